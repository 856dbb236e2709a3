"""The exported graphs, one file each: a `GraphSpec` (graph_spec.py) named `ENTRY`, the file named after it."""
