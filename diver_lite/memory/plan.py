"""RuntimePlan: one value per memory tactic (memory/tactics/), with its label, the label's parser and the checks,
all derived from the tactic files."""

from dataclasses import asdict, field, make_dataclass, replace

from diver_lite.errors import ConfigError
from diver_lite.memory.tactics.precision import COMPUTE_DTYPES, compute_dtype
from diver_lite.registry import discover

TACTICS = discover("diver_lite.memory.tactics")
BYTES = {name: dtype.bytes for name, dtype in COMPUTE_DTYPES.items()}   # (a view of the table)


class PlanMethods:
    """What every RuntimePlan offers; its fields are the tactics'."""

    def __post_init__(self):
        for tactic in TACTICS:
            tactic.check(self)

    def compute_dtype(self, device_type: str) -> str:
        """The dtype the DiT's activations (and its non-quantized layers) run in."""
        return compute_dtype(self.precision, device_type)

    def vae_dtype(self, device_type: str) -> str:
        return self.vae_precision or self.compute_dtype(device_type)

    def check_device(self, device_type: str) -> None:
        for tactic in TACTICS:
            tactic.check_device(self, device_type)

    @property
    def label(self) -> str:
        parts = (t.label(getattr(self, t.name)) for t in sorted(TACTICS, key=lambda t: t.label_order))
        return "+".join(p for p in parts if p is not None)

    @classmethod
    def parse(cls, label: str) -> "RuntimePlan":
        """The inverse of `label`: precision[+offload-X][+vae-P][+slice-N][+vae-slicing][+vae-tiling]..."""
        head, *rest = label.strip().split("+")
        kw = {"precision": head}
        for part in rest:
            found = next((f for f in (t.parse(part) for t in TACTICS) if f is not None), None)
            if found is None:
                raise ConfigError(f"unknown plan part {part!r} in {label!r}",
                                  "write plans as e.g. bf16, int8+keep-modulation, fp16+offload-stream+vae-slicing")
            kw.update(found)
        return cls(**kw)

    def numerics(self) -> "RuntimePlan":
        """The plan without what leaves the numbers as they are (a resumed run must match what remains)."""
        return replace(self, **{t.name: t.default for t in TACTICS if t.exact},
                       **{t.name: t.numerics(self) for t in TACTICS if t.numerics is not None})

    def to_dict(self) -> dict:
        return asdict(self)


RuntimePlan = make_dataclass("RuntimePlan", [(t.name, object, field(default=t.default)) for t in TACTICS],
                             bases=(PlanMethods,), frozen=True)
RuntimePlan.__module__ = __name__
RuntimePlan.__doc__ = "A runtime plan: " + ", ".join(t.name for t in TACTICS) + " (memory/tactics/)."


def apply_tactics(models, plan) -> None:
    """What each tactic does to the placed models (VAE slicing and tiling, attention slicing, ...)."""
    for tactic in TACTICS:
        tactic.apply(models, plan)
