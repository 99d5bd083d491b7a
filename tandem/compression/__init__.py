"""Compression pipeline: prune, AWQ, GGUF export + quantization, zstd, recovery, calibration."""
