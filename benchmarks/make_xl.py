"""Write random-weight DiT-XL/2 + sd-vae-ft-mse-shaped diffusers folders (for memory, speed and export
measurements, never for quality): OUT/xl-fp32 and OUT/xl-bf16 (--dtypes picks).

    python benchmarks/make_xl.py /tmp/xl [--dtypes fp32,bf16]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))          # xl.py
sys.path.insert(0, str(Path(__file__).parents[1]))      # the repository, when diver_lite is not installed
from xl import build_xl  # noqa: E402

from diver_lite.models.save import save_models  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dtypes", default="fp32,bf16")
    args = ap.parse_args()
    models = build_xl()
    for name in args.dtypes.split(","):
        folder = args.out / f"xl-{name}"
        if (folder / "transformer" / "diffusion_pytorch_model.safetensors").is_file():
            print(f"{folder} exists")
            continue
        models.transformer.to(DTYPES[name])
        models.vae.to(DTYPES[name])
        save_models(models, folder)
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
