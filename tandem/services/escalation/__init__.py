"""Escalation at serving time: the policies that hand a request to the frontier fallback, the
features they read and the fitted models they apply (numpy only). Labels, fitting and calibration
are `tandem.training.escalation`.
"""
