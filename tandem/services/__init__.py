"""Online: everything a served request touches.

The processes `tandem up` starts (router, base_model, modifier_worker, fallback, each its own
service with an app factory) and what they run in-process: the llama.cpp engine (`engine/`), the
domain router's runtime (`routing/`), the response cache (`cache/`) and the escalation policies with
their runtime features (`escalation/`). Nothing here imports `training`, `compression`, `eval` or
`pipeline`, nor torch: the import contracts in pyproject.toml check both, so a serving install stays
small.
"""
