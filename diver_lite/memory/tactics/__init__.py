"""The memory tactics, one file each: a `Tactic` (tactic.py) named `ENTRY`. The plan, its label and parser, the
CLI options, the checks, the estimate terms and what is applied to the models are derived from these files."""
