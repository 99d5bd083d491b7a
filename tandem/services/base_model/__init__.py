"""base_model service: the worker contract serving the bare base GGUF."""
