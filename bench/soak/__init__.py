"""`python -m bench.soak`: chat traffic at twice the measured capacity through a full `tandem up`,
with faults injected midway; see __main__.py."""
