"""Cross-architecture evaluation (SPEC §5 scaled to Fashion-MNIST): train each student only on a (distilled or
recovered) set, test it on real images. SGD with momentum, warm-up then cosine, an EMA of the weights, DSA, hard
labels, several seeds. The cross-architecture score is the mean over every student but the distillation proxy
(ConvNet). No I/O."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .dsa import STRATEGY, augment
from .students import STUDENTS

PROXY = "convnet"


@dataclass(frozen=True)
class EvalConfig:
    students: tuple[str, ...] = tuple(STUDENTS)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 300                 # the DC/DM protocol's 300 (its 1000 costs 3.3x on 2 cores)
    batch: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: float = 0.05              # fraction of the steps
    ema: float = 0.995
    dsa: str = STRATEGY
    lr_overrides: dict = field(default_factory=dict)


def train_student(name: str, images: torch.Tensor, labels: torch.Tensor, cfg: EvalConfig, seed: int,
                  num_classes: int = 10) -> nn.Module:
    """images: [N, 3, H, W] normalised; returns the EMA of the weights, in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    kwargs = {"num_classes": num_classes}
    if name in ("convnet", "mlp", "lenet", "vit"):
        kwargs["size"] = images.shape[-1]
    model = STUDENTS[name](**kwargs).train()
    ema = STUDENTS[name](**kwargs).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    lr = cfg.lr_overrides.get(name, cfg.lr)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    per_epoch = max(1, -(-len(images) // cfg.batch))
    total = cfg.epochs * per_epoch
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + np.cos(np.pi * (s - warm) / max(1, total - warm))))
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(images), generator=g)
        for k in range(0, len(images), cfg.batch):
            idx = perm[k:k + cfg.batch]
            x = augment(images[idx], int(torch.randint(2**31 - 1, (1,), generator=g)), cfg.dsa)
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(p, 1 - cfg.ema)
                for be, b in zip(ema.buffers(), model.buffers()):
                    be.copy_(b)
    return ema


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    correct = sum(int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
                  for i in range(0, len(images), batch))
    return correct / len(images)


def evaluate_set(images: np.ndarray, labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray,
                 cfg: EvalConfig, log: Callable[[str], None] | None = None) -> dict:
    """images/test_images: [N, 3, H, W] in the same normalised space; labels hard [N]. Returns per student the
    accuracy of every seed, their mean and std (%), and the cross-architecture score."""
    x, y = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), torch.from_numpy(labels).long()
    tx, ty = torch.from_numpy(np.ascontiguousarray(test_images, dtype=np.float32)), torch.from_numpy(test_labels).long()
    num_classes = int(max(int(y.max()), int(ty.max())) + 1)
    out = {}
    for name in cfg.students:
        runs = [100 * accuracy(train_student(name, x, y, cfg, seed, num_classes), tx, ty) for seed in cfg.seeds]
        out[name] = {"runs": runs, "mean": float(np.mean(runs)), "std": float(np.std(runs))}
        if log:
            log(f"{name}: {out[name]['mean']:.2f} ± {out[name]['std']:.2f} %")
    others = [out[n]["mean"] for n in cfg.students if n != PROXY]
    return {"students": out, "cross_arch": float(np.mean(others)) if others else None}


def render_table(results: dict[str, dict], cfg: EvalConfig) -> str:
    """Markdown: one row per set, one column per student (mean ± std over seeds), then the cross-arch score."""
    names = list(cfg.students)
    lines = [f"Test accuracy (%) on real images; {cfg.epochs} epochs, seeds {list(cfg.seeds)}, DSA {cfg.dsa}; "
             f"cross-arch = mean over all but {PROXY}.", "",
             "| set | " + " | ".join(names) + " | cross-arch |", "|---|" + "---|" * (len(names) + 1)]
    for label, r in results.items():
        cells = [f"{r['students'][n]['mean']:.2f} ± {r['students'][n]['std']:.2f}" for n in names]
        cross = f"{r['cross_arch']:.2f}" if r["cross_arch"] is not None else "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {cross} |")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict[str, dict], students: tuple[str, ...], width: int = 720, height: int = 360) -> np.ndarray:
    """Grouped bars (one group per student, one bar per set) of mean accuracy, drawn with Pillow."""
    from PIL import Image, ImageDraw

    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, top, bottom = 40, 30, height - 40
    group = (width - left - 10) / max(1, len(students))
    bar = group * 0.8 / max(1, len(results))
    draw.line([left, bottom, width - 10, bottom], fill=(0, 0, 0))
    for g, name in enumerate(students):
        x0 = left + g * group + group * 0.1
        for k, (label, r) in enumerate(results.items()):
            acc = r["students"][name]["mean"]
            y = bottom - (bottom - top) * acc / 100
            draw.rectangle([x0 + k * bar, y, x0 + (k + 1) * bar - 2, bottom], fill=colours[k % len(colours)])
        draw.text((x0, bottom + 8), name, fill=(0, 0, 0))
    for k, label in enumerate(results):
        draw.text((left + 5 + 150 * k, 8), label[:24], fill=colours[k % len(colours)])
    draw.text((2, top - 4), "100", fill=(0, 0, 0))
    draw.text((8, bottom - 10), "0", fill=(0, 0, 0))
    return np.asarray(img)
