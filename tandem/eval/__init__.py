"""Evaluation harness: benchmark loaders, train/dev/test splits, scorers and the async runner."""
