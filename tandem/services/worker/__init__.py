"""The worker contract, served by base_model and modifier_worker alike: OpenAI chat completions
on one llama.cpp engine, plus /v1/models, /health, /ready and /metrics."""
