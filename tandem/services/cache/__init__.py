"""The router's response cache: exact match on the normalized request, optional semantic match."""
