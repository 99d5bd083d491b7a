"""Escalation to a frontier fallback: policies, the difficulty and answer-confidence models, calibration."""
