"""Per-image noise streams, so that a result depends on neither batch size, order, resumption, sharding nor
device."""

# Per-image noise. Each image draws from its own generator seeded by (run seed, image index, part, stream), so
# a result does not depend on batch size, order, resumption, sharding or device. numpy's PCG64 makes the same
# numbers on every machine and lets the ONNX Runtime path run without torch.
#
# Streams: 0 the VAE posterior sample, 1 the forward noise to t_init, 2 + i the DDPM noise of step i.

import numpy as np

POSTERIOR, FORWARD = 0, 1


def step_stream(index: int) -> int:
    return 2 + index


def image_noise(seed: int, key: tuple[int, ...], stream: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key, stream])))
    return rng.standard_normal(shape, dtype=np.float32)


def batch_noise(seed: int, keys: list[tuple[int, ...]], stream: int, shape: tuple[int, ...]) -> np.ndarray:
    """[B, *shape]: one independent draw per image key."""
    return np.stack([image_noise(seed, k, stream, shape) for k in keys])
