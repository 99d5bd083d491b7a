"""Inference engines behind the worker contract."""
