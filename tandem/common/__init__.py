"""Pieces every service and recipe shares: wire types, errors, settings, manifest, metrics."""
