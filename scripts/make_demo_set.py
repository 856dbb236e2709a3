"""Write examples/demo_dm_ipc1.pt: one real Fashion-MNIST training image per class (the first of each class),
as 3-channel 32x32 (padded by 2, grey replicated), ImageNet mean/std normalised, in the DM layout of SPEC §1.

Source: Debian's dataset-fashion-mnist (MIT licence, Zalando SE); `apt-get install dataset-fashion-mnist`.
Run: python scripts/make_demo_set.py [--root /usr/share/datasets/fashion-mnist] [-o examples/demo_dm_ipc1.pt]
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from diver_lite.fashion_mnist import read_idx
from diver_lite.prepare import from_unit


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    ap.add_argument("-o", "--out", type=Path, default=Path("examples/demo_dm_ipc1.pt"))
    args = ap.parse_args()
    images = read_idx(args.root / "train-images-idx3-ubyte.gz")
    labels = read_idx(args.root / "train-labels-idx1-ubyte.gz")
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    x = torch.from_numpy(images[picks].astype(np.float32) / 255.0)[:, None]      # [10, 1, 28, 28]
    x = torch.nn.functional.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1)           # [10, 3, 32, 32]
    x = from_unit(x.contiguous(), "imagenet")
    y = torch.from_numpy(labels[picks].astype(np.int64))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"data": [[x, y]], "res": 32, "source": "Fashion-MNIST train, first image of each class"}, args.out)
    print(f"wrote {args.out}: {tuple(x.shape)}, labels {y.tolist()}")


if __name__ == "__main__":
    main()
