"""Fine-tuning recipes: the native LoRA SFT runner, GGUF <-> HF conversion, the base recipe."""
