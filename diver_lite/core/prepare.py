"""Image preparation in numpy (docs/algorithm.md, stages 1 and 6): pixel spaces, resizing, NCFM mosaics. numpy, not torch, so
that the ONNX Runtime path runs without torch; the resize matches torch's F.interpolate (tested)."""

from functools import lru_cache

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Normalised pixel spaces by name: per-channel (mean, std) the set was normalised with (x = (u - mean) / std).
NORMALISED = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "glad-imagenet": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),   # GLaD's ImageNet-subset sets
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "fashion-mnist": ((0.2861,), (0.3530,)),                                 # DC/DM's grey sets
    "mnist": ((0.1307,), (0.3081,)),
}
PIXEL_SPACES = ("unit", "symmetric") + tuple(NORMALISED)
CUSTOM = "custom:"          # "custom:m1,m2,m3:s1,s2,s3", from --pixel-mean/--pixel-std


def custom_space(mean: tuple[float, ...], std: tuple[float, ...]) -> str:
    if len(mean) != len(std) or len(mean) not in (1, 3) or any(not 0 < s < float("inf") for s in std):
        raise ValueError("--pixel-mean and --pixel-std need 1 or 3 values each, the same count, std > 0")
    if any(not -1e3 < m < 1e3 for m in mean) or any(not 1e-4 <= s <= 1e3 for s in std):
        raise ValueError("a pixel mean must be finite and a std between 1e-4 and 1000 (pixel statistics of [0, 1] "
                         "images: mean about 0.5, std about 0.25)")
    return CUSTOM + ",".join(map(repr, map(float, mean))) + ":" + ",".join(map(repr, map(float, std)))


def is_pixel_space(space: str) -> bool:
    if space in PIXEL_SPACES:
        return True
    try:
        _stats(space, 3)
        return space.startswith(CUSTOM)
    except (ValueError, KeyError):
        return False


def _stats(space: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The space's (mean, std) as [1, channels, 1, 1]; 3-channel statistics are averaged for grey images and
    grey ones repeated for RGB."""
    if space.startswith(CUSTOM):
        mean, std = (tuple(float(v) for v in part.split(",")) for part in space[len(CUSTOM):].split(":"))
    else:
        mean, std = NORMALISED[space]
    if len(mean) != channels:
        mean, std = ((sum(mean) / 3,), (sum(std) / 3,)) if channels == 1 else (mean * 3, std * 3)
    shape = (1, channels, 1, 1)
    return np.array(mean, np.float32).reshape(shape), np.array(std, np.float32).reshape(shape)


def to_unit(x: np.ndarray, space: str) -> np.ndarray:
    """[N, C, H, W] from a pixel space to [0, 1] (not clipped)."""
    if space == "unit":
        return x
    if space == "symmetric":
        return (x + 1) / 2
    mean, std = _stats(space, x.shape[1])
    return x * std + mean


def from_unit(u: np.ndarray, space: str) -> np.ndarray:
    if space == "unit":
        return u
    if space == "symmetric":
        return u * 2 - 1
    mean, std = _stats(space, u.shape[1])
    return (u - mean) / std


def space_warnings(x: np.ndarray, space: str) -> list[str]:
    """Where a set's values contradict the pixel space assumed for its layout, say which is likely. Normalised
    natural images spread over about ±2 (beyond [0, 1]); [0, 1] and [-1, 1] images stay inside their range."""
    sample = x.reshape(-1)[::max(1, x.size // 1_000_000)]     # a strided sample: a large set is not copied whole
    lo, hi = float(np.percentile(sample, 0.5)), float(np.percentile(sample, 99.5))
    out = []
    if space == "unit" and (lo < -0.25 or hi > 1.25):
        out.append(f"values span [{lo:.2f}, {hi:.2f}], wider than the assumed [0, 1]: the set is likely mean/std "
                   "normalised (--pixel-space imagenet, cifar10, ... or --pixel-mean/--pixel-std)")
    elif space not in ("unit", "symmetric") and lo >= -0.02 and hi <= 1.02:
        out.append(f"values lie in [{lo:.2f}, {hi:.2f}], as [0, 1] images do, not mean/std-normalised ones "
                   "(--pixel-space unit)")
    if x.shape[1] == 1 and space in NORMALISED and len(NORMALISED[space][0]) == 3:
        out.append(f"a grey set read as {space} (3-channel statistics averaged); DC/DM's grey sets use "
                   "--pixel-space fashion-mnist or mnist")
    return out


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
