"""An ONNX Runtime plan for `diver-lite profile`: exported graphs of one precision, run lean or resident."""

from dataclasses import asdict, dataclass

from diver_lite.errors import ConfigError

PREFIX = "ort-"


@dataclass(frozen=True)
class OrtPlan:
    precision: str                 # of the --onnx folder that runs it (fp32, fp16, int8)
    sessions: str = "lean"

    @property
    def label(self) -> str:
        return f"{PREFIX}{self.precision}" + ("+resident" if self.sessions == "resident" else "")

    @classmethod
    def parse(cls, label: str) -> "OrtPlan":
        head, *rest = label.strip()[len(PREFIX):].split("+")
        if any(part != "resident" for part in rest):
            raise ConfigError(f"unknown part of the ONNX Runtime plan {label!r}", "write e.g. ort-int8 or "
                              "ort-fp32+resident")
        return cls(head, "resident" if rest else "lean")

    def to_dict(self) -> dict:
        return asdict(self) | {"kind": "onnxruntime"}


def onnx_folders(folders: list, plans: list) -> dict:
    """precision -> the --onnx folder of that precision, for each ONNX Runtime plan (read from manifest.json)."""
    from pathlib import Path

    from diver_lite.backends.ort import read_manifest

    by_precision = {read_manifest(Path(f))["precision"]: str(f) for f in folders}
    wanted = {p.precision for p in plans if isinstance(p, OrtPlan)}
    missing = sorted(wanted - set(by_precision))
    if missing:
        raise ConfigError(f"no --onnx folder holds {', '.join(missing)} graphs (given: "
                          f"{', '.join(by_precision) or 'none'})", "export them (diver-lite export --precision "
                          f"{missing[0]}) and pass each folder with --onnx")
    return by_precision
