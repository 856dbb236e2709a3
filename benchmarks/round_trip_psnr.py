"""What the embedded VAE keeps of each set: every image encoded (posterior mean) and decoded, as recovery's first
and last stages do with no DiT step between, and compared with the image itself in [0, 1] (PSNR of the set's
pixels, mean over images); beside it the share of each set's spectral power above half the Nyquist frequency (how
much fine, high-frequency pattern there is for the VAE to lose). One JSON line per set.

    OMP_NUM_THREADS=1 python benchmarks/round_trip_psnr.py runs/fmnist_ipc10/real.pt examples/demo_dm_ipc10.pt ...
"""
import json
import sys

import numpy as np

from diver_lite.core.metrics import psnr_from_mse
from diver_lite.core.prepare import from_vae_output, resize, to_unit, to_vae_input
from diver_lite.layouts import read_set
from diver_lite.pipeline.engine import EngineSpec, build_engine


def high_frequency_share(u: np.ndarray) -> float:
    """Share of the (mean-removed) power spectrum with |f| above half Nyquist, over all images and channels."""
    power = np.abs(np.fft.fft2(u - u.mean(axis=(-2, -1), keepdims=True))) ** 2
    f = np.abs(np.fft.fftfreq(u.shape[-1]))
    high = (f[:, None] > 0.25) | (f[None, :] > 0.25)
    return float(power[..., high].sum() / max(power.sum(), 1e-20))


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return psnr_from_mse(((a - b) ** 2).reshape(len(a), -1).mean(axis=1))


backend = build_engine(EngineSpec(device="cpu"))
for path in sys.argv[1:]:
    dset = read_set(path)
    x = dset.images.astype(np.float32)
    size, channels = backend.image_size, x.shape[1]
    unit = np.clip(to_unit(x, dset.pixel_space), 0, 1)
    out = []
    for i in range(0, len(x), 25):
        mean, _ = backend.encode(resize(to_vae_input(x[i:i + 25], dset.pixel_space, "auto"), size))
        y = from_vae_output(np.asarray(backend.decode(mean)), dset.pixel_space, "auto", channels)
        out.append(resize(y, x.shape[-1], antialias=True))
    back = np.clip(to_unit(np.concatenate(out), dset.pixel_space), 0, 1)
    print(json.dumps({"set": path, "images": len(x), "round_trip_psnr_db": round(float(psnr(back, unit).mean()), 2),
                      "high_frequency_share": round(high_frequency_share(unit), 4),
                      "high_frequency_share_after": round(high_frequency_share(back), 4)}), flush=True)
