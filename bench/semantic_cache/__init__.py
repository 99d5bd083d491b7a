"""Semantic-cache benchmark: `python -m bench.semantic_cache` (see __main__.py)."""
