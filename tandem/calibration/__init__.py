"""Answer-confidence features and their calibration, shared by compression reports and escalation."""
