"""`diver-lite profile`: each runtime plan in its own process, through the same engine and batch loop as
`recover`, against the fp32 reference."""
