"""One batch of distilled images through DIVER: prepare, inherit (encode + noise), reverse, decode, map back
(docs/algorithm.md). Pure computation on any backend (backends/base.py); the pipeline reads, writes and keeps the books."""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from diver_lite.core import noise as noise_mod
from diver_lite.core.config import RecoverConfig
from diver_lite.core.controls import NO_MODEL, project
from diver_lite.core.prepare import from_vae_output, merge_mosaic, resize, split_mosaic, to_vae_input
from diver_lite.core.sampler import diver_sample, guided_step_sample
from diver_lite.core.schedule import SamplingSchedule


@dataclass
class StageTimes:
    seconds: dict = field(default_factory=lambda: {"encode": 0.0, "sample": 0.0, "decode": 0.0})
    started: dict = field(default_factory=dict)   # when each stage last began (perf_counter)

    @contextmanager
    def stage(self, name: str, backend):
        start = self.started[name] = time.perf_counter()
        yield
        backend.synchronize()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def inherit(backend, x: np.ndarray, keys, seed: int):
    """z_inh = scaling * (a posterior sample of VAE.encode(x)), each image with its own posterior noise."""
    mean, std = backend.encode(x)
    n = noise_mod.batch_noise(seed, keys, noise_mod.POSTERIOR, tuple(mean.shape[1:]))
    return (mean + std * backend.asarray(n)) * backend.scaling_factor


def recover_batch(backend, images: np.ndarray, dit_labels: np.ndarray, indices: list[int], config: RecoverConfig,
                  schedule: SamplingSchedule, pixel_space: str, mosaic: bool = False,
                  times: StageTimes | None = None, callback=None) -> np.ndarray:
    """images [B, C, H, W] in `pixel_space` (NCFM mosaics if `mosaic`) -> recovered [B, C, H', W'] in the same
    space; H' = H, or the model's image size with `keep_size`. dit_labels: DiT class ids [B]. `callback`: the
    sampler's, after each reverse step (core/sampler.py)."""
    times = times or StageTimes()
    if config.control in NO_MODEL:
        return project(images, pixel_space, grey=config.control == "projection-grey")
    size, seed = backend.image_size, config.seed
    channels, in_size = images.shape[1], images.shape[-1]
    if mosaic:  # NCFM: each 2x2 mosaic is four images, recovered one by one
        images, dit_labels = split_mosaic(images), np.repeat(dit_labels, 4)
        keys = [(i, q) for i in indices for q in range(4)]
    else:
        keys = [(i, 0) for i in indices]

    with times.stage("encode", backend):
        x = resize(to_vae_input(images.astype(np.float32), pixel_space, config.pixel_range), size)
        z_inh = inherit(backend, x, keys, seed)                            # [B, 4, h, w]
    with times.stage("sample", backend):
        if config.control == "round-trip":      # the VAE alone: decode the inherited latent as it is
            z0 = z_inh
        else:
            z0 = _reverse(backend, z_inh, dit_labels, keys, seed, schedule, callback)
    with times.stage("decode", backend):
        y = backend.decode(z0 / backend.scaling_factor)                    # [B, 3, size, size]
        if mosaic:  # reassemble four size² results into (2 size)² and bring it back to size², as PReDD
            y = resize(merge_mosaic(y), size)
        y = from_vae_output(y, pixel_space, config.pixel_range, channels)
        if not config.keep_size:
            y = resize(y, in_size, antialias=True)
    return y


def _reverse(backend, z_inh, dit_labels, keys, seed: int, schedule: SamplingSchedule, callback):
    """The reverse process from z_inh noised to the schedule's start (for raw-dit the schedule's start has
    abar = 0: pure noise)."""
    shape = tuple(z_inh.shape[1:])
    noise = lambda stream: backend.asarray(noise_mod.batch_noise(seed, keys, stream, shape))  # noqa: E731
    labels = backend.asarray(np.asarray(dit_labels, dtype=np.int64))
    step = backend.guided_step                             # ONNX Runtime over guided_step.onnx, else None
    if step is not None:
        null = backend.asarray(np.full(len(dit_labels), backend.null_class, dtype=np.int64))
        z0 = guided_step_sample(step, z_inh, noise(noise_mod.FORWARD), labels, null, schedule, callback)
    else:
        z0 = diver_sample(backend.denoiser, z_inh, noise(noise_mod.FORWARD), labels, schedule,
                          step_noise=lambda i: noise(noise_mod.step_stream(i)), callback=callback)
    return z0
