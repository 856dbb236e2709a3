"""Image preparation in plain torch (SPEC §2 step 1 and 6): pixel spaces, resizing, NCFM mosaics."""

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1]
    mean = torch.tensor(IMAGENET_MEAN if c == 3 else (sum(IMAGENET_MEAN) / 3,), dtype=x.dtype, device=x.device)
    std = torch.tensor(IMAGENET_STD if c == 3 else (sum(IMAGENET_STD) / 3,), dtype=x.dtype, device=x.device)
    return mean.view(1, c, 1, 1), std.view(1, c, 1, 1)


def to_unit(x: torch.Tensor, space: str) -> torch.Tensor:
    """[N, C, H, W] from a pixel space to [0, 1] (not clipped)."""
    if space == "unit":
        return x
    if space == "symmetric":
        return (x + 1) / 2
    if space == "imagenet":
        mean, std = _stats(x)
        return x * std + mean
    raise ValueError(space)


def from_unit(u: torch.Tensor, space: str) -> torch.Tensor:
    if space == "unit":
        return u
    if space == "symmetric":
        return u * 2 - 1
    if space == "imagenet":
        mean, std = _stats(u)
        return (u - mean) / std
    raise ValueError(space)


def to_vae_input(x: torch.Tensor, space: str, pixel_range: str) -> torch.Tensor:
    """`auto`: the input's pixel space -> the VAE's [-1, 1]. `raw`: the stored values as they are (PReDD).
    Grey images are replicated to 3 channels."""
    if pixel_range == "auto":
        x = to_unit(x, space) * 2 - 1
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def from_vae_output(y: torch.Tensor, space: str, pixel_range: str, channels: int) -> torch.Tensor:
    """The inverse of `to_vae_input`; not clamped (PReDD keeps the decoder's values). Grey: channel mean."""
    if pixel_range == "auto":
        y = from_unit((y + 1) / 2, space) if channels == 3 else from_unit((y.mean(1, keepdim=True) + 1) / 2, space)
    elif channels == 1:
        y = y.mean(1, keepdim=True)
    return y


def resize(x: torch.Tensor, size: int, antialias: bool = False) -> torch.Tensor:
    """Bilinear, align_corners=False, as PReDD. Without antialias a downsample matches PReDD's F.interpolate;
    mapping a 256² result back to a small input size uses antialias so it does not alias."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    antialias = antialias and size < x.shape[-1]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


def split_mosaic(x: torch.Tensor) -> torch.Tensor:
    """NCFM: [N, C, 2h, 2w] -> [4N, C, h, w], each image's quadrants in order TL, TR, BL, BR."""
    n, c, H, W = x.shape
    h, w = H // 2, W // 2
    q = x.reshape(n, c, 2, h, 2, w).permute(0, 2, 4, 1, 3, 5)  # [N, row, col, C, h, w]
    return q.reshape(n * 4, c, h, w)


def merge_mosaic(q: torch.Tensor) -> torch.Tensor:
    """The inverse of `split_mosaic`: [4N, C, h, w] -> [N, C, 2h, 2w]."""
    n4, c, h, w = q.shape
    x = q.reshape(n4 // 4, 2, 2, c, h, w).permute(0, 3, 1, 4, 2, 5)  # [N, C, row, h, col, w]
    return x.reshape(n4 // 4, c, 2 * h, 2 * w)
