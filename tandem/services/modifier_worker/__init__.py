"""modifier_worker service: the worker contract with the base held once plus N LoRA adapters,
one chosen per request by model name (`tandem-<domain>`)."""
