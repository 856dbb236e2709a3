"""The memory-runtime options shared by `recover` and `profile`: precision, offload, attention slicing, VAE
slicing/tiling, and memory budgets that choose a plan."""

import math

import click

from diver_lite.errors import ConfigError

RUNTIME_HELP = """
\b
Memory (torch backend):
  fp32 is the reference. CPU: bf16 runs at about 0.3x the fp32 time; int8 (torchao) and fp8 storage hold the DiT's
  block weights in a byte each. CUDA: fp16/bf16; int8 and nf4 through bitsandbytes, fp8-compute on fp8 tensor
  cores. --offload model/stream/sequential trade time for memory; --vram-budget/--ram-budget (GB or auto) pick the
  fastest plan whose estimate fits and print it; with --batch-size auto also the largest batch that fits.
"""


class Budget(click.ParamType):
    """A number of GB, or auto."""

    name = "budget"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float) or value == "auto":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of GB nor auto", param, ctx)


BUDGET = Budget()


class BatchSize(click.ParamType):
    """A positive number of images, or auto."""

    name = "batch_size"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of images nor auto", param, ctx)
        if n < 1:
            self.fail(f"{n} is below 1", param, ctx)
        return n


BATCH_SIZE = BatchSize()


def runtime_names() -> list[str]:
    from diver_lite.memory.plan import TACTICS

    return [t.name for t in TACTICS] + ["vram_budget", "ram_budget"]


def optgroup_runtime(f):
    """One option per memory tactic (memory/tactics/), then the budgets that choose a plan."""
    from diver_lite.memory.plan import TACTICS

    from diver_lite.cli.dataclass_options import SectionOption

    memory = {"cls": SectionOption, "section": "Memory"}
    options = []
    for tactic in TACTICS:
        if tactic.default is True:   # on unless turned off: --x/--no-x
            options.append(click.option(f"{tactic.option}/--no-{tactic.option[2:]}", tactic.name, default=True,
                                        help=tactic.help, **memory))
        elif isinstance(tactic.default, bool):
            options.append(click.option(tactic.option, tactic.name, is_flag=True, help=tactic.help, **memory))
        else:
            options.append(click.option(tactic.option, tactic.name, default=tactic.cli_default, metavar=tactic.metavar,
                                        type=click.Choice(tactic.choices) if tactic.choices else None,
                                        help=tactic.help, **memory))
    options += [
        click.option("--vram-budget", type=BUDGET, default=None, metavar="GB|auto",
                     help="Choose the fastest plan whose estimated peak GPU memory fits (CUDA); auto: the device's "
                     "free memory less a 10 % margin.", **memory),
        click.option("--ram-budget", type=BUDGET, default=None, metavar="GB|auto",
                     help="Choose the fastest plan whose estimated peak RAM fits (CPU); auto: this process's memory "
                     "plus 90 % of what the system has available.", **memory),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def runtime_from_options(o: dict, backend: str) -> dict:
    """recover()/profile keyword arguments (plan, budget_gb) from the CLI options."""
    from diver_lite.memory.plan import RuntimePlan

    budget = o["vram_budget"] if o["vram_budget"] is not None else o["ram_budget"]
    if budget is not None and budget != "auto" and not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"memory budget {budget} GB", "give a positive, finite number of GB, e.g. --ram-budget 4")
    if o["vram_budget"] is not None and o["ram_budget"] is not None:
        raise ConfigError("--vram-budget and --ram-budget were both given", "give the one for your device")
    from diver_lite.memory.plan import TACTICS

    explicit = [t.name for t in TACTICS if t.chosen_by_budget and o[t.name] is not None]
    if budget is not None and explicit:
        raise ConfigError(f"--{explicit[0].replace('_', '-')} and a memory budget were both given",
                          "drop the budget to fix the plan yourself, or drop --" + explicit[0].replace("_", "-"))
    if backend != "torch" and (explicit or budget is not None):
        raise ConfigError("precision, offload and budgets apply to the torch backend",
                          "an ONNX folder's precision is fixed at export (diver-lite export --precision)")
    plan = RuntimePlan(**{t.name: t.default if o[t.name] is None else o[t.name] for t in TACTICS})
    return {"plan": plan, "budget_gb": budget,
            "budget_for": None if budget is None else ("cuda" if o["vram_budget"] is not None else "cpu")}
