"""`tandem pipeline`: the stages from raw data to the served system (docs/PIPELINE.md)."""
