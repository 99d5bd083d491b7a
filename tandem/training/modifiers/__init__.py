"""Domain modifiers: LoRA adapters for code, reasoning and automation trained on the embedded (or
any Llama-family) base, exported to GGUF, evaluated against the base and recorded in the manifest.

`tandem train modifier` runs one domain's recipe (`recipe.py`); `tandem build` runs them all for
the embedded default and leaves `tandem up` able to serve base + modifiers.
"""
