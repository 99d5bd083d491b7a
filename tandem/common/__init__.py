"""Below everything: wire types, errors, settings, manifest, metrics, prices, model files.

Imports nothing else from `tandem` (an import contract in pyproject.toml checks it), so services,
recipes and the evaluation harness can all use it without depending on one another.
"""
