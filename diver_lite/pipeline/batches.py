"""The batch loop that `recover` and `profile` share: fixed index blocks of a set through core.recovery."""

from collections.abc import Callable, Iterator

import numpy as np

from diver_lite.core.config import RecoverConfig
from diver_lite.core.recovery import StageTimes, recover_batch
from diver_lite.core.schedule import SamplingSchedule


def recover_batches(engine, images: np.ndarray, dit_labels: np.ndarray, batches: list[list[int]],
                    config: RecoverConfig, schedule: SamplingSchedule, pixel_space: str, mosaic: bool = False,
                    times: Callable[[int], StageTimes] | StageTimes | None = None,
                    callback: Callable[[dict], None] | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yields (indices, recovered images) for each block of `batches` in turn. `times`: the StageTimes that
    accumulate the stage timings (or k -> the StageTimes of the k-th batch). `callback`: the sampler's, after
    each reverse step ({x, i, x0_pred, ...}, see core.samplers)."""
    for k, idx in enumerate(batches):
        stage = times(k) if callable(times) else times
        yield idx, recover_batch(engine, images[idx], dit_labels[idx], idx, config, schedule, pixel_space,
                                 mosaic=mosaic, times=stage, callback=callback)
