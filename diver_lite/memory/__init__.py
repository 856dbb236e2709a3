"""The memory runtime: a registry of tactics (precision, offload, slicing, ...), the `RuntimePlan` they make,
its peak estimate, and the placements that wrap the unchanged models."""
