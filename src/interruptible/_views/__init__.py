"""Views generated from the declarations: spec/'s tables, diagrams and schemas (`_spec.py`,
`_diagrams.py`), the golden traces (`_traces.py`), and a run's lit diagram and timeline
(`_pictures.py`). Nothing below the command line and the testing kit imports them
(spec/verification.md, LAYER-1)."""
