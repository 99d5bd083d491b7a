"""router service: the public OpenAI-compatible gateway (auth, cache, routing, escalation, workers)."""
