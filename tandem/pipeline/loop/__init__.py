"""`tandem loop`: production traffic back into a better modifier, promoted without a restart."""
