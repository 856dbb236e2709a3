"""Stage 1, Matching Training Trajectories (Cazenavette et al., CVPR 2022): expert ConvNet trajectories on real data,
then synthetic images (and a learnable lr) whose student steps land where the expert did. No I/O."""

# Follows the authors' buffer.py and distill.py: experts trained with SGD (lr 0.01, no momentum, no weight decay,
# batch 256) and DSA, their parameters kept after every epoch; each distillation iteration starts a student at a
# random expert epoch < max_start_epoch, takes syn_steps SGD steps on the (DSA-augmented) synthetic batch with the
# learned lr, and minimises ||student - expert(start + expert_epochs)||² / ||expert(start) - expert(start +
# expert_epochs)||², backpropagating through all the student steps; images by SGD (momentum 0.5, lr_img), the lr by
# SGD (momentum 0.5, lr_lr). Scaled down for one CPU thread where stated in the CLI (experts, their epochs, width).

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call

from diver_lite.core.prepare import from_unit
from diver_lite.experiments.fashion_mnist.distill import random_real
from diver_lite.experiments.fashion_mnist.dsa import STRATEGY, augment
from diver_lite.experiments.fashion_mnist.students import ConvNet
from diver_lite.experiments.loop_state import resume, snapshot


@dataclass(frozen=True)
class MTTConfig:
    width: int = 128                 # ConvNet-3, as MTT's (instance norm, average pooling)
    num_experts: int = 100           # buffer.py --num_experts
    train_epochs: int = 50           # buffer.py --train_epochs
    lr_teacher: float = 0.01         # expert SGD lr, and the learned lr's start
    batch_train: int = 256
    iterations: int = 5000           # distill.py --Iteration
    syn_steps: int = 50              # CIFAR-10 IPC 1 (paper's table); IPC 10: 30
    expert_epochs: int = 2
    max_start_epoch: int = 2         # IPC 1: 2; IPC 10: 20
    lr_img: float = 1000.0           # with ZCA in the paper; the CLI's default for unwhitened pixels is smaller
    lr_lr: float = 1e-7              # IPC 1: 1e-7; IPC 10: 1e-5
    batch_syn: int | None = None     # None: the whole synthetic set per student step
    seed: int = 0


def _flat(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone()


def _unflat(net: torch.nn.Module, flat: torch.Tensor) -> dict:
    out, k = {}, 0
    for name, p in net.named_parameters():
        out[name] = flat[k:k + p.numel()].view_as(p)
        k += p.numel()
    return out


def train_experts(images01: np.ndarray, labels: np.ndarray, cfg: MTTConfig,
                  log: Callable[[int, int, float], None] | None = None) -> list[torch.Tensor]:
    """Expert trajectories: for each expert a tensor [train_epochs + 1, P] of its flat parameters after each epoch
    (row 0: the random start)."""
    x_all = torch.from_numpy(from_unit(images01, "imagenet").astype(np.float32))
    y_all = torch.from_numpy(labels).long()
    num_classes, size = int(labels.max()) + 1, images01.shape[-1]
    g = torch.Generator().manual_seed(cfg.seed)
    experts = []
    for e in range(cfg.num_experts):
        torch.manual_seed(cfg.seed * 1000 + e)
        net = ConvNet(num_classes, cfg.width, size=size).train()
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_teacher, momentum=0, weight_decay=0)
        trajectory = [_flat(net)]
        for epoch in range(cfg.train_epochs):
            perm = torch.randperm(len(x_all), generator=g)
            for k in range(0, len(perm), cfg.batch_train):
                idx = perm[k:k + cfg.batch_train]
                seed = int(torch.randint(2**31 - 1, (1,), generator=g))
                loss = torch.nn.functional.cross_entropy(net(augment(x_all[idx], seed, STRATEGY)), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            trajectory.append(_flat(net))
            if log:
                log(e, epoch, float(loss.detach()))
        experts.append(torch.stack(trajectory))
    return experts


def distill_mtt(images01: np.ndarray, labels: np.ndarray, experts: list[torch.Tensor], ipc: int, cfg: MTTConfig,
                log: Callable[[int, float, float], None] | None = None, checkpoint=None):
    """Returns (images [C*ipc, 3, H, W] ImageNet-normalised, labels [C*ipc], the learned lr, losses).
    `checkpoint`: a pipeline.checkpoint.Checkpoint to resume from and save to (same result, interrupted or not)."""
    if max(cfg.max_start_epoch + cfg.expert_epochs, 1) > experts[0].shape[0] - 1:
        raise ValueError(f"experts have {experts[0].shape[0] - 1} epochs; max_start_epoch + expert_epochs = "
                         f"{cfg.max_start_epoch + cfg.expert_epochs}")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    num_classes, size = int(labels.max()) + 1, images01.shape[-1]
    init, syn_labels = random_real(images01, labels, ipc, cfg.seed)        # distill.py --pix_init real
    syn = torch.from_numpy(init).clone().requires_grad_(True)
    y = torch.from_numpy(syn_labels).long()
    syn_lr = torch.tensor(cfg.lr_teacher).requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=0.5)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=0.5)
    net = ConvNet(num_classes, cfg.width, size=size).train()
    batch = cfg.batch_syn or len(syn)
    losses, first = [], 0
    parts = {"syn": syn, "syn_lr": syn_lr, "opt_img": opt_img, "opt_lr": opt_lr}
    saved = checkpoint.load() if checkpoint else None
    if saved:
        first, losses = resume(saved, parts, g)
    for it in range(first, cfg.iterations):
        expert = experts[int(torch.randint(len(experts), (1,), generator=g))]
        start = int(torch.randint(cfg.max_start_epoch, (1,), generator=g)) if cfg.max_start_epoch > 0 else 0
        begin, target = expert[start], expert[start + cfg.expert_epochs]
        params = begin.clone().requires_grad_(True)
        chunks: list = []
        for _ in range(cfg.syn_steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(len(syn), generator=g), batch))
            idx = chunks.pop()
            seed = int(torch.randint(2**31 - 1, (1,), generator=g))
            out = functional_call(net, _unflat(net, params), (augment(syn[idx], seed, STRATEGY),))
            ce = torch.nn.functional.cross_entropy(out, y[idx])
            grad = torch.autograd.grad(ce, params, create_graph=True)[0]
            params = params - syn_lr * grad
        loss = ((params - target) ** 2).sum() / ((begin - target) ** 2).sum()
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        opt_img.step()
        opt_lr.step()
        with torch.no_grad():
            syn_lr.clamp_(min=1e-6)        # a negative lr would ascend; the authors' runs never reach it
        losses.append(float(loss.detach()))
        if log:
            log(it, losses[-1], float(syn_lr.detach()))
        if checkpoint and checkpoint.due():
            checkpoint.save(snapshot(it + 1, losses, parts, g))
    return syn.detach().numpy(), syn_labels, float(syn_lr.detach()), losses
