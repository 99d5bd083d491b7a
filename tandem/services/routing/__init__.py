"""Domain routing: which modifier should answer a request."""
