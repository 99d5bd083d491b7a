"""Training escalation (`tandem escalation collect/train/calibrate`): outcome labels from this build's
own stack, the difficulty and answer-confidence models fitted per domain, the calibrated thresholds.
What it writes is served by `tandem.services.escalation`.
"""
