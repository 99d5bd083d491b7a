"""Tandem: a small base model plus domain LoRA modifiers behind one OpenAI-compatible endpoint."""

__version__ = "0.1.0"
