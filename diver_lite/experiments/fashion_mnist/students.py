"""Classifiers in plain torch. ConvNet is the dataset-distillation proxy (DC/DM: conv-norm-relu-avgpool blocks,
instance norm); here it also judges the embedded prior's samples."""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from diver_lite.experiments.fashion_mnist.architectures import (MLP, EfficientNet, LeNet, MobileNetV2, ResNet18,
                                                                ShuffleNetV2, ViTTiny)


class ConvNet(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 128, depth: int = 3, channels: int = 3, size: int = 32):
        super().__init__()
        layers = []
        for d in range(depth):
            layers += [nn.Conv2d(channels if d == 0 else width, width, 3, padding=1),
                       nn.GroupNorm(width, width, affine=True),       # instance norm, as DC/DM's ConvNet
                       nn.ReLU(inplace=True), nn.AvgPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * (size // 2 ** depth) ** 2, num_classes)

    def forward(self, x):                                              # x: [B, C, H, W] normalised
        return self.classifier(self.features(x).flatten(1))


def normalise(images01: np.ndarray) -> torch.Tensor:
    """[0, 1] images -> zero mean, unit range around 0, as the classifier was trained."""
    return (torch.from_numpy(np.ascontiguousarray(images01)) - 0.5) / 0.5


def train_classifier(images01: np.ndarray, labels: np.ndarray, epochs: int = 2, batch: int = 128, lr: float = 0.01,
                     seed: int = 0, width: int = 64, log: Callable[[int, float], None] | None = None,
                     num_classes: int = 10) -> ConvNet:
    """SGD with momentum and a cosine schedule on real images; returns the model in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    batch = min(batch, len(images01))      # a small image folder: one batch per epoch
    model = ConvNet(num_classes=num_classes, width=width, size=images01.shape[-1]).train()
    steps = epochs * (len(images01) // batch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    x_all, y_all = normalise(images01), torch.from_numpy(labels).long()
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(x_all), generator=g)
        for k in range(0, len(perm) - batch + 1, batch):
            idx = perm[k:k + batch]
            loss = nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log and step % 100 == 0:
                log(step, float(loss.detach()))
            step += 1
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images01: np.ndarray, batch: int = 500) -> np.ndarray:
    x = normalise(images01)
    return np.concatenate([model(x[i:i + batch]).argmax(1).numpy() for i in range(0, len(x), batch)])



STUDENTS = {"convnet": ConvNet, "mlp": MLP, "lenet": LeNet, "resnet18": ResNet18, "mobilenetv2": MobileNetV2,
            "efficientnet": EfficientNet, "shufflenetv2": ShuffleNetV2, "vit": ViTTiny}
# PReDD's (and DIVER's) cross-architecture score averages these; the proxy and the shallow nets stand beside it.
CROSS_ARCH = ("vit", "efficientnet", "shufflenetv2", "mobilenetv2", "resnet18")
SHALLOW = ("mlp", "lenet")


def norm_group(name: str, resnet_norm: str = "batch") -> str:
    """Where a student's normalisation statistics come from: "BatchNorm" (estimated from the training set's
    batches, so a set's pixel statistics reach it directly), "LayerNorm", "instance norm" (per image), "none"."""
    if name == "resnet18":
        return "BatchNorm" if resnet_norm == "batch" else "instance norm"
    return {"mobilenetv2": "BatchNorm", "efficientnet": "BatchNorm", "shufflenetv2": "BatchNorm", "vit": "LayerNorm",
            "convnet": "instance norm", "mlp": "none", "lenet": "none"}[name]


NORM_GROUPS = ("BatchNorm", "LayerNorm", "instance norm", "none")
