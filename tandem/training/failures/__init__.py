"""Failure analysis (`tandem analyze failures`): group the evaluation items a model got wrong into
named categories, the input of distillation."""
