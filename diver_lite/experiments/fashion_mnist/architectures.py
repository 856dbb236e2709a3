"""The cross-architecture students of PReDD's evaluation, in plain torch and sized for 32x32 inputs: MLP, LeNet,
ResNet-18, MobileNetV2, a tiny ViT, EfficientNet and ShuffleNetV2 (students.py holds the proxy ConvNet, the
training loop and the registry)."""

import torch
from torch import nn


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


def norm_layer(kind: str, channels: int) -> nn.Module:
    """'batch' (torchvision's ResNet) or 'instance' (PReDD's ResNet-18: per-image, per-channel, affine)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}")


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str = "batch"):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), norm_layer(norm, cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  norm_layer(norm, cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), norm_layer(norm, cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool); `width` 64 is the usual one, 16 fits a CPU; `norm` 'batch'
    or 'instance' (PReDD's evaluator)."""

    def __init__(self, num_classes: int = 10, channels: int = 3, width: int = 16, norm: str = "batch"):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), norm_layer(norm, width), nn.ReLU(inplace=True)]
        cin = width
        for k, w in enumerate(widths):
            layers += [_Basic(cin, w, 1 if k == 0 else 2, norm), _Basic(w, w, 1, norm)]
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


class _MBConv(nn.Module):
    """EfficientNet's block: 1x1 expand, depthwise kxk, squeeze-and-excitation (1/4 of the input width), 1x1
    project; SiLU; residual when the shape allows."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, kernel: int):
        super().__init__()
        hidden, squeeze = cin * expand, max(1, cin // 4)
        self.use_skip = stride == 1 and cin == cout
        self.expand = nn.Identity() if expand == 1 else nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU(inplace=True))
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden,
                                                 bias=False), nn.BatchNorm2d(hidden), nn.SiLU(inplace=True))
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, squeeze, 1), nn.SiLU(inplace=True),
                                nn.Conv2d(squeeze, hidden, 1), nn.Sigmoid())
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        h = self.project(h * self.se(h))
        return x + h if self.use_skip else h


class EfficientNet(nn.Module):
    """EfficientNet-B0's stages (MBConv1/6, kernels 3/5, SE) at width x0.5 and one block per stage, with CIFAR
    strides (stride-1 stem, three stride-2 stages: 32x32 -> 4x4)."""

    def __init__(self, num_classes: int = 10, channels: int = 3, mult: float = 0.5):
        super().__init__()
        c = lambda n: max(8, int(n * mult))  # noqa: E731
        # (expand, out, stride, kernel): B0's seven stages, one block each.
        cfg = [(1, 16, 1, 3), (6, 24, 1, 3), (6, 40, 2, 5), (6, 80, 2, 3), (6, 112, 1, 5), (6, 192, 2, 5),
               (6, 320, 1, 3)]
        layers = [nn.Conv2d(channels, c(32), 3, 1, 1, bias=False), nn.BatchNorm2d(c(32)), nn.SiLU(inplace=True)]
        cin = c(32)
        for t, n, s, k in cfg:
            layers.append(_MBConv(cin, c(n), s, t, k))
            cin = c(n)
        layers += [nn.Conv2d(cin, c(1280), 1, bias=False), nn.BatchNorm2d(c(1280)), nn.SiLU(inplace=True),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c(1280), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class _ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: stride 1 splits the channels and transforms one half; stride 2 transforms both
    (one through a depthwise branch) and doubles the width; the halves are concatenated and shuffled."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        half = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        self.branch = nn.Sequential(
            nn.Conv2d(branch_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.shortcut = nn.Sequential(
            nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
            nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True)) if stride == 2 else None

    def forward(self, x):
        if self.stride == 1:
            keep, change = x.chunk(2, dim=1)
            out = torch.cat([keep, self.branch(change)], dim=1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], dim=1)
        return _channel_shuffle(out)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 x0.5 (stage widths 48/96/192, 4/8/4 units, 1024 final) with a stride-1 3x3 stem and no
    max-pool, for 32x32: three stride-2 stages, 32 -> 4."""

    def __init__(self, num_classes: int = 10, channels: int = 3, widths=(48, 96, 192), repeats=(4, 8, 4),
                 final: int = 1024):
        super().__init__()
        layers = [nn.Conv2d(channels, 24, 3, 1, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True)]
        cin = 24
        for w, n in zip(widths, repeats):
            layers += [_ShuffleUnit(cin, w, 2)] + [_ShuffleUnit(w, w, 1) for _ in range(n - 1)]
            cin = w
        layers += [nn.Conv2d(cin, final, 1, bias=False), nn.BatchNorm2d(final), nn.ReLU(inplace=True),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(final, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
