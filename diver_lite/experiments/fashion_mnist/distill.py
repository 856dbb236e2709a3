"""Stage 1, Distribution Matching (Zhao & Bilen, WACV 2023): synthetic images whose mean embedding under randomly
initialised ConvNets matches each class's real mean embedding, with DSA on both sides. Plus the random-real
baseline. Images in ImageNet-normalised space, as the DM layout stores them. No I/O."""

from collections.abc import Callable

import numpy as np
import torch

from diver_lite.experiments.fashion_mnist.dsa import STRATEGY, augment
from diver_lite.core.prepare import from_unit
from diver_lite.experiments.fashion_mnist.students import ConvNet
from diver_lite.experiments.loop_state import resume, snapshot


def random_real(images01: np.ndarray, labels: np.ndarray, ipc: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`ipc` real images per class picked at random: the baseline a distilled set has to beat."""
    rng = np.random.default_rng(seed)
    picks = np.concatenate([rng.choice(np.flatnonzero(labels == c), ipc, replace=False)
                            for c in np.unique(labels)])
    return from_unit(images01[picks], "imagenet").astype(np.float32), labels[picks].astype(np.int64)


def distill_dm(images01: np.ndarray, labels: np.ndarray, ipc: int, iterations: int = 200, seed: int = 0,
               batch_real: int = 256, lr_img: float = 1.0, width: int = 128, depth: int = 3,
               strategy: str = STRATEGY, log: Callable[[int, float], None] | None = None, checkpoint=None):
    """DM from real-image initialisation: each iteration draws a fresh random ConvNet and, per class, matches the
    mean embedding of a real batch and of the synthetic images under the same DSA draw. SGD (momentum 0.5) on the
    pixels. Returns (images [C*ipc, 3, H, W] ImageNet-normalised, labels [C*ipc], losses). `checkpoint`: a
    pipeline.checkpoint.Checkpoint to resume from and save to (the result is the same, interrupted or not)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    real = torch.from_numpy(from_unit(images01, "imagenet").astype(np.float32))
    y = torch.from_numpy(labels).long()
    classes = torch.unique(y).tolist()
    by_class = {c: torch.nonzero(y == c).flatten() for c in classes}
    init, init_labels = random_real(images01, labels, ipc, seed)
    syn = torch.from_numpy(init).clone().requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=lr_img, momentum=0.5)
    losses, first, parts = [], 0, {"syn": syn, "opt": opt}
    saved = checkpoint.load() if checkpoint else None
    if saved:
        first, losses = resume(saved, parts, g)
    for it in range(first, iterations):
        net = ConvNet(width=width, depth=depth, size=real.shape[-1]).train()
        net.requires_grad_(False)
        loss = torch.zeros(())
        for k, c in enumerate(classes):
            idx = by_class[c][torch.randperm(len(by_class[c]), generator=g)[:batch_real]]
            aug_seed = int(torch.randint(2**31 - 1, (1,), generator=g))
            with torch.no_grad():
                mean_real = net.features(augment(real[idx], aug_seed, strategy)).flatten(1).mean(0)
            syn_c = syn[k * ipc:(k + 1) * ipc]
            mean_syn = net.features(augment(syn_c, aug_seed, strategy)).flatten(1).mean(0)
            loss = loss + ((mean_real - mean_syn) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log and (it % 20 == 0 or it == iterations - 1):
            log(it, losses[-1])
        if checkpoint and checkpoint.due():
            checkpoint.save(snapshot(it + 1, losses, parts, g))
    return syn.detach().numpy(), init_labels, losses


@torch.no_grad()
def embedding_gap(images01: np.ndarray, labels: np.ndarray, syn: np.ndarray, syn_labels: np.ndarray,
                  nets: int = 8, seed: int = 1234, width: int = 128, depth: int = 3) -> float:
    """DM's objective measured on a fixed panel of random ConvNets, without augmentation: the mean over nets of
    the summed squared distance between each class's real and synthetic mean embeddings."""
    real = torch.from_numpy(from_unit(images01, "imagenet").astype(np.float32))
    s = torch.from_numpy(np.ascontiguousarray(syn, dtype=np.float32))
    total = 0.0
    for k in range(nets):
        torch.manual_seed(seed + k)
        net = ConvNet(width=width, depth=depth, size=real.shape[-1]).eval()
        for c in np.unique(labels):
            mr = net.features(real[torch.from_numpy(labels == c)]).flatten(1).mean(0)
            ms = net.features(s[torch.from_numpy(syn_labels == c)]).flatten(1).mean(0)
            total += float(((mr - ms) ** 2).sum())
    return total / nets
