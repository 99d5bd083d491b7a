"""Sampled live traffic (the router's traffic log), read back for the offline recipes."""
