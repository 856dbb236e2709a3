"""ExportSpec: what `diver-lite export` makes of a model (the graphs, their precision and provider, what the guided
step bakes in), one dataclass whose fields carry their command-line options (diver_lite/options.py) and check
themselves, so that export's --help, the Python API and their errors come from one place."""

from dataclasses import dataclass

from diver_lite.core.guidance import GUIDANCE_TARGETS as TARGETS
from diver_lite.errors import ConfigError
from diver_lite.export.manifest import PRECISIONS
from diver_lite.options import option
from diver_lite.registry import module_names

GRAPHS = tuple(module_names("diver_lite.export.graphs"))   # export/graphs/, one file per graph
GUIDANCE_TARGETS = ("auto", *TARGETS)     # auto: what recover uses by default for the model


@dataclass(frozen=True)
class ExportSpec:
    """`graphs`: names, or one comma-separated string as the command line gives them. `precision` None: fp32, or
    what `provider` runs best. `guidance_target` "auto": what recover uses by default for the model."""

    precision: str | None = option(None, "Of the DiT graphs: fp16 for GPU providers, int8 (dynamic quantization) "
                                   "for CPU. The VAE stays fp32.", choices=PRECISIONS, section="Model and backend",
                                   shown_default="fp32, or what --provider runs best")
    provider: str | None = option(None, "The ONNX Runtime provider the graphs are for (cpu, cuda, tensorrt, "
                                  "directml, coreml, openvino, rocm): the DiT graphs in the precision it runs best "
                                  "(int8 for cpu, fp32 for openvino, else fp16); recorded in manifest.json. Need not "
                                  "be installed here.", metavar="NAME", section="Model and backend")
    graphs: tuple[str, ...] | str = option(GRAPHS, "Comma-separated subset of: " + ", ".join(GRAPHS) + ". "
                                           "guided_step is the single-graph DIVER step; recovery with --backend "
                                           "onnxruntime needs dit and the VAE graphs.", section="Input and output",
                                           metavar="NAMES", shown_default=",".join(GRAPHS))
    cfg_channels: int = option(3, "Channels classifier-free guidance acts on, baked into guided_step.",
                               choices=(3, 4), kind="int-choice", section="Recovery")
    guidance_target: str = option("auto", "Baked into guided_step: what the semantic guidance pulls toward the "
                                  "inherited latent, x0 (the predicted clean latent, PReDD's code) or xt (the "
                                  "running latent, the DIVER paper's equation). auto: what recover uses by default "
                                  "for that model (xt, the paper's, for any --model; x0 for the embedded prior).",
                                  choices=GUIDANCE_TARGETS, section="Recovery")

    def __post_init__(self):
        graphs = self.graphs.split(",") if isinstance(self.graphs, str) else self.graphs
        if not isinstance(graphs, (tuple, list)) or not all(isinstance(g, str) for g in graphs):
            raise ConfigError(f"graphs={self.graphs!r}", "give graph names, e.g. 'dit,vae_encoder,vae_decoder'")
        chosen = tuple(g.strip() for g in graphs if g.strip())
        unknown = sorted(set(chosen) - set(GRAPHS))
        if unknown or not chosen:
            raise ConfigError(f"unknown graphs {unknown or self.graphs!r}", f"choose from {', '.join(GRAPHS)}")
        object.__setattr__(self, "graphs", chosen)
        checks = (("precision", self.precision, (None, *PRECISIONS)), ("cfg_channels", self.cfg_channels, (3, 4)),
                  ("guidance_target", self.guidance_target, GUIDANCE_TARGETS))
        for name, value, allowed in checks:
            if isinstance(value, bool) or value not in allowed:
                raise ConfigError(f"{name}={value!r}", f"use one of {', '.join(str(a) for a in allowed if a)}")
        if self.provider is not None and not (isinstance(self.provider, str) and self.provider.strip()):
            raise ConfigError(f"provider={self.provider!r}", "name an ONNX Runtime provider, e.g. cpu or cuda")

    def target_for(self, embedded_prior: bool) -> str:
        """The guidance target baked in: "auto" resolved for a model that is (or is not) the embedded prior."""
        if self.guidance_target != "auto":
            return self.guidance_target
        return "x0" if embedded_prior else "xt"
