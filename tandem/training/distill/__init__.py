"""Distillation (`tandem distill`): a teacher writes new tasks like each failure category's and
answers them; checked, deduplicated answers become SFT rows for the training recipes."""
