"""Image preparation in numpy (SPEC §2 steps 1 and 6): pixel spaces, resizing, NCFM mosaics. numpy, not torch, so
that the ONNX Runtime path runs without torch; the resize matches torch's F.interpolate (tested)."""

from functools import lru_cache

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(channels: int) -> tuple[np.ndarray, np.ndarray]:
    mean = IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,)
    std = IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,)
    shape = (1, channels, 1, 1)
    return np.array(mean, np.float32).reshape(shape), np.array(std, np.float32).reshape(shape)


def to_unit(x: np.ndarray, space: str) -> np.ndarray:
    """[N, C, H, W] from a pixel space to [0, 1] (not clipped)."""
    if space == "unit":
        return x
    if space == "symmetric":
        return (x + 1) / 2
    if space == "imagenet":
        mean, std = _stats(x.shape[1])
        return x * std + mean
    raise ValueError(space)


def from_unit(u: np.ndarray, space: str) -> np.ndarray:
    if space == "unit":
        return u
    if space == "symmetric":
        return u * 2 - 1
    if space == "imagenet":
        mean, std = _stats(u.shape[1])
        return (u - mean) / std
    raise ValueError(space)


def to_vae_input(x: np.ndarray, space: str, pixel_range: str) -> np.ndarray:
    """`auto`: the input's pixel space -> the VAE's [-1, 1]. `raw`: the stored values as they are (PReDD).
    Grey images are replicated to 3 channels."""
    if pixel_range == "auto":
        x = to_unit(x, space) * 2 - 1
    return np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x


def from_vae_output(y: np.ndarray, space: str, pixel_range: str, channels: int) -> np.ndarray:
    """The inverse of `to_vae_input`; not clamped (PReDD keeps the decoder's values). Grey: channel mean."""
    if channels == 1:
        y = y.mean(axis=1, keepdims=True)
    return from_unit((y + 1) / 2, space) if pixel_range == "auto" else y


@lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int, antialias: bool) -> np.ndarray:
    """[n_out, n_in] weights of torch's bilinear interpolation (align_corners=False), with its antialiasing
    triangle filter when downsampling with `antialias`."""
    scale = n_in / n_out
    w = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        if antialias and scale > 1:
            center, support = scale * (i + 0.5), scale
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), n_in)
            taps = np.clip(1 - np.abs((np.arange(lo, hi) - center + 0.5) / scale), 0, None)
            w[i, lo:hi] = taps / taps.sum()
        else:
            src = max((i + 0.5) * scale - 0.5, 0.0)
            i0 = min(int(src), n_in - 1)
            i1 = min(i0 + 1, n_in - 1)
            frac = src - i0
            w[i, i0] += 1 - frac
            w[i, i1] += frac
    return w.astype(np.float32)


def resize(x: np.ndarray, size: int, antialias: bool = False) -> np.ndarray:
    """[N, C, H, W] -> [N, C, size, size], bilinear as PReDD's F.interpolate. Mapping a 256² result back to a small
    input size uses antialias so it does not alias."""
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    rows, cols = _resize_matrix(h, size, antialias), _resize_matrix(w, size, antialias)
    return (rows @ (x.astype(np.float32) @ cols.T)).astype(np.float32)


def split_mosaic(x: np.ndarray) -> np.ndarray:
    """NCFM: [N, C, 2h, 2w] -> [4N, C, h, w], each image's quadrants in order TL, TR, BL, BR."""
    n, c, H, W = x.shape
    h, w = H // 2, W // 2
    q = x.reshape(n, c, 2, h, 2, w).transpose(0, 2, 4, 1, 3, 5)  # [N, row, col, C, h, w]
    return np.ascontiguousarray(q.reshape(n * 4, c, h, w))


def merge_mosaic(q: np.ndarray) -> np.ndarray:
    """The inverse of `split_mosaic`: [4N, C, h, w] -> [N, C, 2h, 2w]."""
    n4, c, h, w = q.shape
    x = q.reshape(n4 // 4, 2, 2, c, h, w).transpose(0, 3, 1, 4, 2, 5)  # [N, C, row, h, col, w]
    return np.ascontiguousarray(x.reshape(n4 // 4, c, 2 * h, 2 * w))
