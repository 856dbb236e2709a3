"""RecoverConfig: every knob of the DIVER recovery, checked at construction. Defaults follow SPEC §2;
the ones marked [choice] there are options, and the per-method presets are PReDD's starting values."""

from dataclasses import asdict, dataclass, fields, replace

from diver_lite.errors import ConfigError
from diver_lite.registry import discover

SAMPLERS = tuple(s.name for s in discover("diver_lite.core.samplers"))   # core/samplers/
LABEL_PHASES = ("concrete", "all")
PIXEL_RANGES = ("auto", "raw")
CFG_CHANNELS = (3, 4)

# (t_init, K) per distillation method and IPC, from PReDD's README (SPEC §2): the ImageNet-subset table.
METHOD_PRESETS: dict[str, dict[int, tuple[int, int]]] = {
    "dm": {1: (10, 15), 10: (20, 20)},
    "ncfm": {1: (25, 30), 10: (30, 35)},
    "mtt": {1: (10, 10), 10: (10, 10)},
    "edf": {1: (10, 10), 10: (10, 15)},
}
# The embedded Fashion-MNIST prior's table: RecoverConfig fields per method and IPC, each the row that scored best
# on the validation split (benchmarks/fashion_mnist_sweep.sh; docs/BENCHMARKS.md, "Validation sweep"). What was
# not swept takes PReDD's t_init/K above.
FASHION_MNIST_PRESETS: dict[str, dict[int, dict]] = {
    # DM IPC 1, prior v2: labels (CFG) on every step, +7.97 on validation vs the preset's +4.89.
    # DM IPC 10, prior v2: no row beat the DM set on validation (one seed); guidance (and so labels) on all 20 steps
    # was the best recovery row, -1.35 vs the preset's -2.52 (the VAE round trip alone -1.28).
    "dm": {1: {"t_init": 10, "steps": 15, "label_phase": "all"},
           10: {"t_init": 20, "steps": 20, "guidance_window": (0, 19)}},
    # MTT IPC 1 and 10, prior v2: guidance (and so labels) on all 10 steps; on validation +5.12 vs the preset's
    # +4.42 at IPC 1, +4.13 vs +2.74 at IPC 10 (one seed each).
    "mtt": {1: {"t_init": 10, "steps": 10, "guidance_window": (0, 9)},
            10: {"t_init": 10, "steps": 10, "guidance_window": (0, 9)}},
}
PRESET_TABLES = ("imagenet", "fashion-mnist")


@dataclass(frozen=True)
class RecoverConfig:
    """One recovery run. Indices (t_init, steps, the guidance window) are sampling indices of the respaced
    `num_sampling_steps`-step schedule: index i means DiT timestep round(i * 999 / (S - 1))."""

    t_init: int = 10                 # sampling index the inherited latent is noised to
    steps: int = 15                  # K: reverse steps run, at indices K-1 ... 0
    align: bool = False              # True: start the reverse process at t_init (K = t_init + 1), unlike PReDD
    num_sampling_steps: int = 50     # S: the respaced schedule (DiT samples with 50 or 250)
    cfg_scale: float = 4.0
    cfg_channels: int = 3            # 3: original DiT guides the first 3 latent channels; 4: diffusers
    guidance_scale: float = 0.5      # lambda of the semantic guidance; 0 turns it off (PReDD)
    guidance_window: tuple[int, int] | None = None  # (low, high); None: (0, floor(K/2) - 1)
    sigma_scaling: bool = True       # scale the guidance by the learned sigma_i
    label_phase: str = "concrete"    # "concrete": labels, CFG and guidance only for i <= high; "all": every step
    sampler: str = "ddim"            # "ddim" (eta = 0) or "ddpm" (learned variance, PReDD's sampler)
    pixel_range: str = "auto"        # "auto": map the input's pixel space to [-1, 1] and back; "raw": as PReDD
    keep_size: bool = False          # True: write the 256² (model-size) result instead of the input size
    seed: int = 0
    batch_size: int = 4

    def __post_init__(self):
        def need(ok: bool, what: str, fix: str):
            if not ok:
                raise ConfigError(what, fix)

        need(self.num_sampling_steps >= 2, f"num_sampling_steps={self.num_sampling_steps} is below 2", "use 50")
        S = self.num_sampling_steps
        need(0 <= self.t_init < S, f"t_init={self.t_init} is outside 0..{S - 1}", f"pick --t-init in 0..{S - 1}")
        need(1 <= self.effective_steps <= S, f"steps={self.steps} is outside 1..{S}", f"pick --steps in 1..{S}")
        need(self.cfg_scale >= 0, f"cfg_scale={self.cfg_scale} is negative", "use 1 for no CFG, 4 as DiT")
        need(self.cfg_channels in CFG_CHANNELS, f"cfg_channels={self.cfg_channels}", "use 3 (DiT) or 4 (diffusers)")
        need(self.guidance_scale >= 0, f"guidance_scale={self.guidance_scale} is negative", "use 0..1")
        need(self.label_phase in LABEL_PHASES, f"label_phase={self.label_phase!r}", f"use one of {LABEL_PHASES}")
        need(self.sampler in SAMPLERS, f"sampler={self.sampler!r}", f"use one of {SAMPLERS}")
        need(self.pixel_range in PIXEL_RANGES, f"pixel_range={self.pixel_range!r}", f"use one of {PIXEL_RANGES}")
        need(self.batch_size >= 1, f"batch_size={self.batch_size}", "use 1 or more")
        low, high = self.window
        need(0 <= low <= high + 1 and high < self.effective_steps,
             f"guidance window {low}:{high} does not fit the {self.effective_steps} reverse steps",
             f"give LOW:HIGH with 0 <= LOW <= HIGH < {self.effective_steps}")

    @property
    def effective_steps(self) -> int:
        """K, the number of reverse steps actually run."""
        return self.t_init + 1 if self.align else self.steps

    @property
    def window(self) -> tuple[int, int]:
        """(low, high): guidance acts for low <= i <= high; with label_phase=concrete, i <= high is the concrete
        phase. K = 1 gives (0, -1): an empty window, so the single step is unconditional."""
        if self.guidance_window is not None:
            return tuple(self.guidance_window)
        return (0, self.effective_steps // 2 - 1)

    @staticmethod
    def preset_values(method: str, ipc: int, table: str = "imagenet") -> dict:
        """The fields a method's preset sets at IPC 1 or 10 (IPC > 10 uses the IPC 10 values): PReDD's t_init/K
        ("imagenet"), with the Fashion-MNIST prior's validation-chosen fields on top where it has them."""
        presets = METHOD_PRESETS.get(method.lower())
        if presets is None:
            raise ConfigError(f"no preset for method {method!r}", f"use one of {sorted(METHOD_PRESETS)}")
        if table not in PRESET_TABLES:
            raise ConfigError(f"no preset table {table!r}", f"use one of {PRESET_TABLES}")
        key = 1 if ipc < 10 else 10
        t_init, steps = presets[key]
        values = {"t_init": t_init, "steps": steps}
        if table == "fashion-mnist":
            values.update(FASHION_MNIST_PRESETS.get(method.lower(), {}).get(key, {}))
        return values

    @classmethod
    def from_preset(cls, method: str, ipc: int, table: str = "imagenet", **overrides) -> "RecoverConfig":
        """preset_values with `overrides` on top (the CLI passes only options given on its command line)."""
        values = cls.preset_values(method, ipc, table)
        moved = any(k in overrides and overrides[k] != values[k] for k in ("t_init", "steps")) or overrides.get("align")
        if moved:   # a preset's window belongs to its K: other steps take the default window
            values.pop("guidance_window", None)
        return cls(**{**values, **overrides})

    def replace(self, **changes) -> "RecoverConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["guidance_window"] = list(self.window)
        d["effective_steps"] = self.effective_steps
        return d

    def result_fields(self) -> dict:
        """Fields that change the recovered images (a resumed run must match them); batch size does not."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "batch_size"} | {
            "guidance_window": list(self.window)}
