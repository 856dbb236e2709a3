"""RecoverConfig: every knob of the DIVER recovery, checked at construction, and the preset tables that fill it
per distillation method and IPC: the DIVER paper's settings ("paper", the default for any model but the embedded
prior), PReDD's t_init/K ("predd") and the embedded Fashion-MNIST prior's validation-chosen rows ("fashion-mnist").
docs/algorithm.md gives each setting's source."""

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from diver_lite.core.controls import CONTROLS
from diver_lite.core.guidance import GUIDANCE_TARGETS
from diver_lite.errors import ConfigError
from diver_lite.options import option
from diver_lite.registry import discover

SAMPLERS = tuple(s.name for s in discover("diver_lite.core.samplers"))   # core/samplers/
LABEL_PHASES = ("concrete", "all")
PIXEL_RANGES = ("auto", "raw")
CFG_CHANNELS = (3, 4)

# (t_init, K) per distillation method and IPC, from PReDD's README: its ImageNet-subset table.
METHOD_PRESETS: dict[str, dict[int, tuple[int, int]]] = {
    "dm": {1: (10, 15), 10: (20, 20)},
    "ncfm": {1: (25, 30), 10: (30, 35)},
    "mtt": {1: (10, 10), 10: (10, 10)},
    "edf": {1: (10, 10), 10: (10, 15)},
}
# The embedded Fashion-MNIST prior's table: RecoverConfig fields per method and IPC, each the row that scored best
# on the validation split (benchmarks/fashion_mnist_sweep.sh; docs/benchmarks/fashion-mnist-study.md, "Validation sweep"). What was
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
# The DIVER paper's own settings (docs/algorithm.md, "The paper's settings"): DDIM 50, the inherited latent noised
# to t_f = 25 for every method and IPC, all 50 reverse steps run from index 49 (t_r = 50), the guidance only in the
# window [25, 40], gamma 0.1 (0.02 for NCFM), labels with CFG on every step, the guidance pulling the running latent
# (the paper's equation). The CFG scale is not stated: 4.0, DiT's.
PAPER_SETTINGS = {"t_init": 25, "steps": 50, "num_sampling_steps": 50, "guidance_window": (25, 40),
                  "guidance_scale": 0.1, "label_phase": "all", "guidance_target": "xt", "sampler": "ddim"}
PAPER_GUIDANCE_SCALE = {"ncfm": 0.02}
# "imagenet" is the earlier name of "predd" (kept so that scripts that name it keep working).
PRESET_TABLES = ("paper", "predd", "fashion-mnist", "imagenet")


@dataclass(frozen=True)
class RecoverConfig:
    """One recovery run. Indices (t_init, steps, the guidance window) are sampling indices of the respaced
    `num_sampling_steps`-step schedule: index i means DiT timestep round(i * 999 / (S - 1))."""

    t_init: int = option(10, "Sampling index the inherited latent is noised to (of --sampling-steps).", minimum=0,
                         shown_default="the preset's; 10 without one")
    steps: int = option(15, "K, reverse steps run at indices K-1..0.", minimum=1,
                        shown_default="the preset's; 15 without one")
    align: bool = option(False, "Start the reverse process at t_init (K = t_init + 1), unlike PReDD.", kind="pair")
    num_sampling_steps: int = option(50, "Respaced schedule length S (DiT samples with 50 or 250).",
                                     flag="--sampling-steps", minimum=2)
    cfg_scale: float = option(4.0, "Classifier-free guidance scale s.", minimum=0.0)
    cfg_channels: int = option(3, "Latent channels CFG acts on: 3 as the original DiT, 4 as diffusers.",
                               choices=CFG_CHANNELS, kind="int-choice")
    guidance_scale: float = option(0.5, "Semantic guidance lambda (gamma); 0 turns it off (PReDD).", minimum=0.0)
    guidance_window: tuple[int, int] | None = option(None, "Step indices where guidance acts.", metavar="LOW:HIGH",
                                                     kind="window", shown_default="0:floor(K/2)-1")
    sigma_scaling: bool = option(True, "Scale the guidance by the learned sigma_i.", kind="pair")
    guidance_target: str = option("x0", "What the guidance pulls toward the inherited latent: x0, the predicted "
                                  "clean latent (PReDD's code), or xt, the running latent (the DIVER paper's "
                                  "equation).", choices=GUIDANCE_TARGETS,
                                  shown_default="the table's: xt with --presets paper, x0 otherwise; with "
                                  "--onnx-graph guided_step, the graph's")
    label_phase: str = option("concrete", "concrete: labels, CFG and guidance only in the late phase (i <= the "
                              "window's high end); all: every step (PReDD, the paper).", choices=LABEL_PHASES)
    sampler: str = option("ddim", "ddim (eta = 0) or ddpm (learned variance, PReDD's sampler).", choices=SAMPLERS)
    pixel_range: str = option("auto", "auto: map the input's pixel space to the VAE's [-1, 1] and back; raw: feed "
                              "the stored values (PReDD).", choices=PIXEL_RANGES)
    control: str = option("none", "Run a control instead of DIVER, written like a recovery: round-trip (the VAE "
                          "alone: encode, decode), raw-dit (class-conditional DiT samples from noise over the whole "
                          "schedule, no inheritance), projection (no model: clip to the pixel range), "
                          "projection-grey (also each pixel's channel mean).", choices=CONTROLS)
    keep_size: bool = option(False, "Write the model-size (e.g. 256²) result, not the input size.", kind="pair")
    seed: int = option(0, "Run seed; each image has its own stream.", minimum=0, section="Run")
    batch_size: int = 4              # images per DiT batch (the CLI's --batch-size also takes "auto")

    def __post_init__(self):
        def need(ok: bool, what: str, fix: str):
            if not ok:
                raise ConfigError(what, fix)

        need(isinstance(self.num_sampling_steps, numbers.Integral) and self.num_sampling_steps <= 1000,
             f"num_sampling_steps={self.num_sampling_steps!r} is above 1000, DiT's training steps", "use 50 or 250")
        need(self.num_sampling_steps >= 2, f"num_sampling_steps={self.num_sampling_steps} is below 2", "use 50")
        S = self.num_sampling_steps
        need(0 <= self.t_init < S, f"t_init={self.t_init} is outside 0..{S - 1}", f"pick --t-init in 0..{S - 1}")
        need(1 <= self.effective_steps <= S, f"steps={self.steps} is outside 1..{S}", f"pick --steps in 1..{S}")
        need(self.cfg_scale >= 0 and math.isfinite(self.cfg_scale), f"cfg_scale={self.cfg_scale} is negative or not "
             "finite", "use 1 for no CFG, 4 as DiT")
        need(self.cfg_channels in CFG_CHANNELS, f"cfg_channels={self.cfg_channels}", "use 3 (DiT) or 4 (diffusers)")
        need(self.guidance_scale >= 0 and math.isfinite(self.guidance_scale),
             f"guidance_scale={self.guidance_scale} is negative or not finite", "use 0..1")
        need(isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**63,
             f"seed={self.seed!r} is not a non-negative integer", "use 0, 1, 2, ...")
        need(isinstance(self.batch_size, numbers.Integral) and not isinstance(self.batch_size, bool),
             f"batch_size={self.batch_size!r} is not a whole number", "use 1, 2, 4, ...")
        need(self.label_phase in LABEL_PHASES, f"label_phase={self.label_phase!r}", f"use one of {LABEL_PHASES}")
        need(self.guidance_target in GUIDANCE_TARGETS, f"guidance_target={self.guidance_target!r}",
             f"use one of {GUIDANCE_TARGETS}")
        need(self.sampler in SAMPLERS, f"sampler={self.sampler!r}", f"use one of {SAMPLERS}")
        need(self.pixel_range in PIXEL_RANGES, f"pixel_range={self.pixel_range!r}", f"use one of {PIXEL_RANGES}")
        need(self.control in CONTROLS, f"control={self.control!r}", f"use one of {CONTROLS}")
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
    def preset_values(method: str | None, ipc: int, table: str = "paper") -> dict:
        """The fields a preset table sets for a method at IPC 1 or 10 (IPC > 10 uses the IPC 10 values): "paper",
        the DIVER paper's settings (the same for every method and IPC but NCFM's gamma; method None: gamma 0.1);
        "predd" (or "imagenet"), PReDD's t_init/K; "fashion-mnist", PReDD's with the embedded prior's
        validation-chosen fields on top where it has them."""
        if table not in PRESET_TABLES:
            raise ConfigError(f"no preset table {table!r}", f"use one of {PRESET_TABLES}")
        if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
            raise ConfigError(f"ipc={ipc!r} is not a count of images per class", "use 1, 10, 50, ...")
        if method is not None and (not isinstance(method, str) or method.lower() not in METHOD_PRESETS):
            raise ConfigError(f"no preset for method {method!r}", f"use one of {sorted(METHOD_PRESETS)}")
        method = method.lower() if method is not None else None
        if table == "paper":
            return {**PAPER_SETTINGS, "guidance_scale": PAPER_GUIDANCE_SCALE.get(method, 0.1)}
        if method is None:
            raise ConfigError(f"the {table} presets are per method", f"give the method: {sorted(METHOD_PRESETS)}")
        key = 1 if ipc < 10 else 10
        t_init, steps = METHOD_PRESETS[method][key]
        values = {"t_init": t_init, "steps": steps}
        if table == "fashion-mnist":
            values.update(FASHION_MNIST_PRESETS.get(method, {}).get(key, {}))
        return values

    @classmethod
    def from_preset(cls, method: str | None, ipc: int, table: str = "paper", **overrides) -> "RecoverConfig":
        """preset_values with `overrides` on top (the CLI passes only options given on its command line)."""
        values = cls.preset_values(method, ipc, table)
        moved = any(k in overrides and overrides[k] != values[k] for k in ("t_init", "steps")) or overrides.get("align")
        if moved:   # a preset's window belongs to its K: other steps take the default window
            values.pop("guidance_window", None)
        return cls(**{**values, **overrides})

    def summary(self) -> str:
        """The settings that shape the result, in one line (the run's first log line)."""
        if self.control != "none":
            return f"control {self.control}" + (f", seed {self.seed}" if self.control not in ("projection",
                                                                                                "projection-grey") else "")
        low, high = self.window
        return (f"t_init {self.t_init}, K {self.effective_steps} of {self.num_sampling_steps}, guidance "
                f"{self.guidance_scale:g} on {self.guidance_target} in {low}:{high}, labels {self.label_phase}, CFG "
                f"{self.cfg_scale:g}, {self.sampler}, seed {self.seed}")

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
