"""What a dataclass field tells the command line about itself: its help, flag, choices, range and section. The
library's dataclasses (RecoverConfig, EngineSpec, RunOptions) carry it as field metadata, so that the CLI's options
are made from them (cli/dataclass_options.py) instead of being written a second time beside them, and --help,
the Python API and run.toml name the same settings. Plain data: nothing here imports click."""

from dataclasses import MISSING, field

SECTIONS = ("Input and output", "Model and backend", "Memory", "Recovery", "Run")


def option(default=MISSING, help: str = "", *, flag: str | None = None, choices=None, minimum=None,
           maximum=None, metavar: str | None = None, kind: str | None = None, section: str = "Recovery",
           shown_default: str | None = None):
    """A dataclass field with a command-line option. `flag`: the option's name (default: --field-name); `kind`:
    "window" (LOW:HIGH), "int-choice" (choices given as numbers), "pair" (a --x/--no-x switch for a bool), "flag"
    (a switch that is off unless given);
    `shown_default`: the default as --help states it (default: the field's)."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    meta = {"help": help, "flag": flag, "choices": tuple(choices) if choices is not None else None,
            "min": minimum, "max": maximum, "metavar": metavar, "kind": kind, "section": section,
            "shown_default": shown_default}
    return field(default=default, metadata={"cli": meta})
