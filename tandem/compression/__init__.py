"""Offline compression: prune, AWQ, GGUF export + quantization, zstd, recovery, calibration, each stage
with its size and quality in the report.
"""
