"""fallback service: an OpenAI-compatible proxy to a frontier upstream, with retries, a circuit
breaker, cost accounting and a daily budget."""
