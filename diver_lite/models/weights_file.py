"""Reading single tensors out of a .safetensors file with plain reads: no mmap, so what was read and dropped again
leaves the process's resident memory (pages of a mapped file stay counted in RSS while mapped). Used by the
low-memory plans that build a model without weights and fill it a part at a time (lazy_weights.py)."""

import json
import struct
from pathlib import Path

import torch

from diver_lite.errors import ModelError, first_line

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


class WeightsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                if size > self.path.stat().st_size - 8:      # garbage would claim a header of many GB
                    raise ValueError(f"its header claims {size} bytes, more than the file holds")
                header = json.loads(f.read(size))
            if not isinstance(header, dict) or not all(isinstance(v, dict) and "data_offsets" in v
                                                       for k, v in header.items() if k != "__metadata__"):
                raise ValueError("its header is not a safetensors tensor table")
        except (OSError, struct.error, ValueError, UnicodeDecodeError) as e:
            raise ModelError(f"{self.path} is not a readable safetensors file: {first_line(e)}",
                             "the file is damaged or not safetensors: download or save it again")
        header.pop("__metadata__", None)
        self._data_start = 8 + size
        self._entries = header

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._entries[name]["shape"])

    def nbytes(self, name: str) -> int:
        lo, hi = self._entries[name]["data_offsets"]
        return hi - lo

    def get(self, name: str, dtype: torch.dtype | None = None, pin: bool = False) -> torch.Tensor:
        """One tensor, read into fresh memory (pinned for fast copies to a GPU if `pin`), cast to `dtype`."""
        entry = self._entries[name]
        stored = _DTYPES[entry["dtype"]]
        lo, hi = entry["data_offsets"]
        out = torch.empty(tuple(entry["shape"]), dtype=stored, pin_memory=pin and dtype in (None, stored))
        if hi > lo:
            with open(self.path, "rb", buffering=0) as f:
                f.seek(self._data_start + lo)
                view = memoryview(out.view(-1).view(torch.uint8).numpy())
                if f.readinto(view) != hi - lo:
                    raise ModelError(f"{self.path} is truncated at {name}", "copy or save the weights file again")
        if dtype is not None and dtype != stored and out.is_floating_point():
            out = out.to(dtype)
            if pin:
                out = out.pin_memory()
        return out
