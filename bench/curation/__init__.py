"""Curation at scale: a 640K-record corpus with planted duplicates, and the runs that measure it."""
