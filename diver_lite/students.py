"""Classifiers in plain torch. ConvNet is the dataset-distillation proxy (DC/DM: conv-norm-relu-avgpool blocks,
instance norm); here it also judges the embedded prior's samples."""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


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
                     seed: int = 0, width: int = 64, log: Callable[[int, float], None] | None = None) -> ConvNet:
    """SGD with momentum and a cosine schedule on real images; returns the model in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = ConvNet(width=width, size=images01.shape[-1]).train()
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


class MLP(nn.Module):
    def __init__(self, num_classes: int = 10, channels: int = 3, size: int = 32, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, width), nn.ReLU(inplace=True),
                                 nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10, channels: int = 3, size: int = 32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        n = ((size - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * n * n, 120), nn.ReLU(inplace=True),
                                        nn.Linear(120, 84), nn.ReLU(inplace=True), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool), BatchNorm; `width` 64 is the usual one, 16 fits a CPU."""

    def __init__(self, num_classes: int = 10, channels: int = 3, width: int = 16):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        cin = width
        for k, w in enumerate(widths):
            layers += [_Basic(cin, w, 1 if k == 0 else 2), _Basic(w, w, 1)]
            cin = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class _Inverted(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_skip = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.body(x) if self.use_skip else self.body(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 at width multiplier 0.5 with CIFAR strides (stride 1 stem and first stages) for 32x32."""

    def __init__(self, num_classes: int = 10, channels: int = 3, mult: float = 0.5):
        super().__init__()
        c = lambda n: max(8, int(n * mult))  # noqa: E731
        cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]
        layers = [nn.Conv2d(channels, c(32), 3, 1, 1, bias=False), nn.BatchNorm2d(c(32)), nn.ReLU6(inplace=True)]
        cin = c(32)
        for t, n, reps, s in cfg:
            for r in range(reps):
                layers.append(_Inverted(cin, c(n), s if r == 0 else 1, t))
                cin = c(n)
        layers += [nn.Conv2d(cin, c(1280), 1, bias=False), nn.BatchNorm2d(c(1280)), nn.ReLU6(inplace=True),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c(1280), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class ViTTiny(nn.Module):
    """A small ViT for 32x32: patch 4 (64 tokens), width 96, depth 4, 3 heads, a class token."""

    def __init__(self, num_classes: int = 10, channels: int = 3, size: int = 32, dim: int = 96, depth: int = 4,
                 heads: int = 3, patch: int = 4):
        super().__init__()
        self.patch = nn.Conv2d(channels, dim, patch, patch)
        tokens = (size // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)                              # [B, T, D]
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1) + self.pos
        return self.head(self.norm(self.encoder(t))[:, 0])


STUDENTS = {"convnet": ConvNet, "mlp": MLP, "lenet": LeNet, "resnet18": ResNet18, "mobilenetv2": MobileNetV2,
            "vit": ViTTiny}
