"""On top: the commands that drive the rest end to end.

`tandem pipeline` (the recipes as one cached DAG into one artifacts folder, with gates and a report,
docs/PIPELINE.md), `tandem loop` (production traffic back into better artifacts), `tandem validate`
(every shipped config), `tandem publish` (a Hub-ready folder) and the default bundle's builder.
"""
