"""Tandem: a small base model plus domain LoRA modifiers behind one OpenAI-compatible endpoint.

`services/` is what runs when a request is served; `training/` and `compression/` make, offline, the
artifacts the services load; `eval/` measures both; `pipeline/` drives them end to end; `common/` sits
below them all. docs/ARCHITECTURE.md ("Layout") says what may import what; `lint-imports` checks it.
"""

__version__ = "0.1.0"
