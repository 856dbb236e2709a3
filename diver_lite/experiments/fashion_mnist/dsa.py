"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021), in plain torch: the augmentation DC/DM use while
distilling and while evaluating. Siamese: two calls with the same seed draw the same operation and parameters, so
real and synthetic batches are augmented alike. Gradients flow to the images through every operation."""

import math

import torch
import torch.nn.functional as F

STRATEGY = "color_crop_cutout_flip_scale_rotate"
# DSA's default strengths.
BRIGHTNESS, SATURATION, CONTRAST = 1.0, 2.0, 0.5
CROP_PAD, CUTOUT, SCALE, ROTATE = 0.125, 0.5, 1.2, 15.0


def augment(x: torch.Tensor, seed: int, strategy: str = STRATEGY) -> torch.Tensor:
    """x [B, C, H, W] -> one randomly chosen operation of `strategy` (color applies its three parts), with
    per-image parameters; everything drawn from `seed`."""
    if not strategy or strategy == "none":
        return x
    g = torch.Generator().manual_seed(int(seed))
    ops = strategy.split("_")
    op = ops[int(torch.randint(len(ops), (1,), generator=g))]
    B = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=g).to(x.device)  # noqa: E731
    if op == "color":
        x = x + (u(B, 1, 1, 1) - 0.5) * BRIGHTNESS
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (u(B, 1, 1, 1) * SATURATION) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (u(B, 1, 1, 1) + CONTRAST) + mean
    if op == "flip":
        return torch.where(u(B, 1, 1, 1) < 0.5, x.flip(3), x)
    if op == "cutout":
        H, W = x.shape[2:]
        ch, cw = int(H * CUTOUT + 0.5), int(W * CUTOUT + 0.5)
        cy = (u(B) * (H + 1 - ch % 2)).long().view(B, 1, 1)   # centres as DSA draws them
        cx = (u(B) * (W + 1 - cw % 2)).long().view(B, 1, 1)
        rows = torch.arange(H, device=x.device).view(1, H, 1)
        cols = torch.arange(W, device=x.device).view(1, 1, W)
        inside = ((rows >= cy - ch // 2) & (rows < cy + ch - ch // 2)
                  & (cols >= cx - cw // 2) & (cols < cx + cw - cw // 2))
        return x * (~inside).unsqueeze(1).to(x.dtype)
    theta = torch.zeros(B, 2, 3, device=x.device)
    if op == "crop":  # translate by up to CROP_PAD of the size, zeros outside
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = (u(B, 2) * 2 - 1) * CROP_PAD * 2
    elif op == "scale":
        theta[:, 0, 0] = u(B) * (SCALE - 1 / SCALE) + 1 / SCALE
        theta[:, 1, 1] = u(B) * (SCALE - 1 / SCALE) + 1 / SCALE
    elif op == "rotate":
        angle = (u(B) - 0.5) * 2 * ROTATE / 180 * math.pi
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), torch.sin(-angle)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    else:
        raise ValueError(f"unknown DSA operation {op!r}")
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)
