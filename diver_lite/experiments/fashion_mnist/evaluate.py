"""Cross-architecture evaluation (PReDD's protocol scaled to Fashion-MNIST): train each student only on a (distilled or
recovered) set, test it on real images, under the DC/DM protocol or PReDD's. The weights are averaged (EMA with
warm-up, started from the live weights) and BatchNorm statistics re-estimated for the averaged weights. No I/O."""

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from diver_lite.experiments.fashion_mnist.dsa import STRATEGY, augment
from diver_lite.experiments.fashion_mnist.paired import paired_difference
from diver_lite.experiments.fashion_mnist.students import CROSS_ARCH, SHALLOW, STUDENTS

PROXY = "convnet"
# dc: DC/DM's evaluator (300 epochs, lr 0.01, short warm-up). predd: PReDD's (1000 epochs, lr 1e-3, 1e-2 for the
# MobileNet-like nets, linear warm-up over half the epochs, instance-norm ResNet-18).
PROTOCOLS = {
    "dc": dict(epochs=300, lr=0.01, warmup=0.05, lr_overrides={}, resnet_norm="batch"),
    "predd": dict(epochs=1000, lr=1e-3, warmup=0.5, resnet_norm="instance",
                  lr_overrides={"mobilenetv2": 1e-2, "efficientnet": 1e-2, "shufflenetv2": 1e-2}),
}


@dataclass(frozen=True)
class EvalConfig:
    students: tuple[str, ...] = tuple(STUDENTS)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    protocol: str = "dc"
    epochs: int = 300
    batch: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: float = 0.05              # fraction of the steps, linear, then cosine
    ema: float = 0.995                # the EMA's decay once warmed up: min(ema, (1 + n) / (10 + n))
    bn_passes: int = 10               # augmented passes over the set that re-estimate BN statistics for the EMA
    raw: bool = False                 # also test the raw (live) weights: a second pass over the test split
    dsa: str = STRATEGY
    resnet_norm: str = "batch"
    lr_overrides: dict = field(default_factory=dict)

    @classmethod
    def from_protocol(cls, name: str, **overrides) -> "EvalConfig":
        if name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
        return cls(protocol=name, **{**PROTOCOLS[name], **overrides})


def ema_decay(decay: float) -> Callable:
    """avg_fn for AveragedModel: an EMA whose decay warms up as min(decay, (1 + n) / (10 + n)) (n: updates so
    far), so the early, random weights are forgotten quickly; the first update copies the live weights."""
    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1 + int(n)) / (10 + int(n)))
        return averaged + (current - averaged) * (1 - d)
    return avg_fn


def build_student(name: str, cfg: EvalConfig, num_classes: int, size: int) -> nn.Module:
    kwargs = {"num_classes": num_classes}
    if name in ("convnet", "mlp", "lenet", "vit"):
        kwargs["size"] = size
    if name == "resnet18":
        kwargs["norm"] = cfg.resnet_norm
    return STUDENTS[name](**kwargs)


def train_student(name: str, images: torch.Tensor, labels: torch.Tensor, cfg: EvalConfig, seed: int,
                  num_classes: int = 10) -> tuple[nn.Module, nn.Module]:
    """images: [N, 3, H, W] normalised. Returns (raw weights, EMA of the weights updated once per epoch with BN
    statistics re-estimated on augmented training images), both in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_student(name, cfg, num_classes, images.shape[-1]).train()
    ema = AveragedModel(model, avg_fn=ema_decay(cfg.ema), use_buffers=False)
    lr = cfg.lr_overrides.get(name, cfg.lr)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    per_epoch = max(1, -(-len(images) // cfg.batch))
    total = cfg.epochs * per_epoch
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + np.cos(np.pi * (s - warm) / max(1, total - warm))))
    seed_of = lambda: int(torch.randint(2**31 - 1, (1,), generator=g))  # noqa: E731
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(images), generator=g)
        for k in range(0, len(images), cfg.batch):
            idx = perm[k:k + cfg.batch]
            loss = nn.functional.cross_entropy(model(augment(images[idx], seed_of(), cfg.dsa)), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        ema.update_parameters(model)
    # The averaged weights need their own BN statistics: the live model's were gathered for other weights.
    # Shuffled like the training batches (sets are stored class by class; a one-class batch has other statistics).
    batches = [augment(images[perm[k:k + cfg.batch]], seed_of(), cfg.dsa)
               for perm in (torch.randperm(len(images), generator=g) for _ in range(cfg.bn_passes))
               for k in range(0, len(images), cfg.batch)]
    update_bn(batches, ema.module)
    return model.eval(), ema.module.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    correct = sum(int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
                  for i in range(0, len(images), batch))
    return correct / len(images)


# One (set, student, seed) run; module globals let worker processes receive the arrays once.
_SHARED: dict = {}


def _share(sets: dict, test: tuple, cfg: EvalConfig, num_classes: int, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    _SHARED.update(sets=sets, test=test, cfg=cfg, num_classes=num_classes)


def set_for_seed(entry, seed: int):
    """A set's (images, labels): the same for every seed, or {seed: (images, labels)} for a set given per seed (a
    recovery whose noise is replicated with the student seed)."""
    return entry[seed] if isinstance(entry, dict) else entry


def run_one(label: str, name: str, seed: int) -> tuple[float, float | None]:
    images, labels = set_for_seed(_SHARED["sets"][label], seed)
    tx, ty = _SHARED["test"]
    cfg = _SHARED["cfg"]
    raw, ema = train_student(name, torch.from_numpy(images), torch.from_numpy(labels).long(), cfg, seed,
                             _SHARED["num_classes"])
    tx, ty = torch.from_numpy(tx), torch.from_numpy(ty).long()
    return 100 * accuracy(ema, tx, ty), 100 * accuracy(raw, tx, ty) if cfg.raw else None


def evaluate_sets(sets: dict[str, tuple[np.ndarray, np.ndarray]], test_images: np.ndarray, test_labels: np.ndarray,
                  cfg: EvalConfig, baseline: str | None = None, jobs: int = 1,
                  log: Callable[[str], None] | None = None, done: dict | None = None,
                  on_result: Callable[[tuple, tuple], None] | None = None) -> dict:
    """sets: label -> (images [N, 3, H, W] normalised like test_images, hard labels [N]), or {seed: (images,
    labels)} for a set that differs per student seed (recovery noise replicated with it). Every student of every
    set is trained on every seed, seed by seed, so that an interrupted evaluation has whole seeds (in `jobs`
    processes; the result does not depend on it). Returns per set: per student the EMA accuracy of each seed
    ('runs'), its mean and sample SD, the raw weights' runs (with cfg.raw); the cross-architecture score (mean over
    CROSS_ARCH students evaluated) per seed and its mean; the shallow students' mean; and, for each set but
    `baseline`, the paired differences against it (per student and for the score).
    `done`: {(label, student, seed): (ema %, raw %)} already computed (a resumed evaluation); `on_result(item,
    accuracies)` is called as each run finishes, so a caller can keep it."""
    def arrays(entry):
        x, y = entry
        return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)

    sets = {k: {s: arrays(e) for s, e in v.items()} if isinstance(v, dict) else arrays(v) for k, v in sets.items()}
    test = (np.ascontiguousarray(test_images, dtype=np.float32), np.asarray(test_labels, dtype=np.int64))
    all_labels = [y for v in sets.values() for _, y in (v.values() if isinstance(v, dict) else [v])]
    num_classes = int(max(max(int(y.max()) for y in all_labels), int(test[1].max())) + 1)
    done = dict(done or {})
    work = [(label, name, seed) for seed in cfg.seeds for label in sets for name in cfg.students
            if (label, name, seed) not in done]

    def finished(item: tuple, accuracies: tuple) -> None:
        done[item] = accuracies
        if on_result:
            on_result(item, accuracies)
        if log:
            log(f"[{len(done)}/{len(sets) * len(cfg.students) * len(cfg.seeds)}] {item[0]}: {item[1]} seed "
                f"{item[2]}: {accuracies[0]:.2f} %")

    if jobs <= 1:
        _share(sets, test, cfg, num_classes, None)
        for item in work:
            finished(item, run_one(*item))
    elif work:
        pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_share,
                                   initargs=(sets, test, cfg, num_classes, 1))
        try:
            futures = {pool.submit(run_one, *item): item for item in work}
            for fut in as_completed(futures):
                finished(futures[fut], fut.result())
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: the workers end with their parent, none is left running.
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    results = {label: summarise({n: [done[(label, n, s)] for s in cfg.seeds] for n in cfg.students})
               for label in sets}
    if baseline is not None:
        for label, r in results.items():
            if label != baseline:
                r["paired"] = compare(r, results[baseline])
    return results


def summarise(per_student: dict[str, list[tuple[float, float]]]) -> dict:
    # std: the sample SD over seeds (n - 1; 0 for a single seed).
    students = {n: {"runs": [e for e, _ in runs], "raw_runs": [r for _, r in runs],
                    "mean": float(np.mean([e for e, _ in runs])),
                    "std": float(np.std([e for e, _ in runs], ddof=1)) if len(runs) > 1 else 0.0}
                for n, runs in per_student.items()}
    cross = [n for n in CROSS_ARCH if n in students]
    score_runs = [float(np.mean(v)) for v in zip(*(students[n]["runs"] for n in cross))] if cross else None
    shallow = [students[n]["mean"] for n in SHALLOW if n in students]
    return {"students": students, "cross_arch_runs": score_runs,
            "cross_arch": float(np.mean(score_runs)) if score_runs else None,
            "shallow": float(np.mean(shallow)) if shallow else None}


def compare(result: dict, baseline: dict) -> dict:
    """Paired differences of one set against the baseline set: per student and for the cross-arch score."""
    out = {n: paired_difference(s["runs"], baseline["students"][n]["runs"])
           for n, s in result["students"].items() if n in baseline["students"]}
    if result["cross_arch_runs"] and baseline["cross_arch_runs"]:
        out["cross_arch"] = paired_difference(result["cross_arch_runs"], baseline["cross_arch_runs"])
    return out


def evaluate_set(images: np.ndarray, labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray,
                 cfg: EvalConfig, log: Callable[[str], None] | None = None) -> dict:
    """One set, in this process (see evaluate_sets)."""
    return evaluate_sets({"set": (images, labels)}, test_images, test_labels, cfg, log=log)["set"]

