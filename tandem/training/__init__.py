"""Offline: everything that makes a model, a data set or a threshold the services load.

Data curation, failure analysis and teacher distillation; the LoRA SFT runner and the base recipe;
the modifiers; the domain router's training recipe (`routing/`); escalation labels, model fitting and
threshold calibration (`escalation/`); `tandem build`. It may use the services' runtime pieces (the
features a served model reads, say), and runs the engine only through `services.engine.offline`.
"""
