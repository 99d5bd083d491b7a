"""The llama.cpp engine the workers serve with: continuous batching, chat templates, AMX-safe
loading. Offline code uses it only through `offline.py`.
"""
