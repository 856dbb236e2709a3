"""ZCA-whitened sets (MTT's --zca): recovered in their normalised space and whitened again on the way out."""

# ZCA-whitened sets (MTT's --zca, kornia's ZCAWhitening): stored = (x - mean) @ T over flattened images, x in the
# set's normalised space. They are recovered in that space and whitened again on the way out; without the whitening
# (mean [D], transform [D, D], D = C·H·W) they cannot be, and are refused. No I/O beyond reading the given file.

from pathlib import Path

import numpy as np

from diver_lite.errors import InputError


def read_whitening(path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], transform [D, D]) from an .npz with arrays 'mean' and 'transform' (kornia's mean_vector and
    transform_matrix, saved with numpy)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            mean, transform = np.asarray(z["mean"], np.float64).reshape(-1), np.asarray(z["transform"], np.float64)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path} is not a ZCA whitening: {str(e)[:120]}",
                         "save an .npz with 'mean' [D] and 'transform' [D, D] (kornia ZCAWhitening's "
                         "mean_vector and transform_matrix)")
    d = int(np.prod(shape))
    if mean.shape != (d,) or transform.shape != (d, d):
        raise InputError(f"{path}: a whitening of shape mean {mean.shape}, transform {transform.shape} does not "
                         f"fit images {tuple(shape)} (D = {d})", "give the whitening fitted for this set's images")
    for name, arr in (("mean", mean), ("transform", transform)):
        if not np.isfinite(arr).all():
            raise InputError(f"{path}: the whitening's {name} has {int((~np.isfinite(arr)).sum())} non-finite "
                             "values", "re-save the whitening from the fitted "
                             "ZCAWhitening")
    return mean, transform


def unwhiten(x: np.ndarray, mean: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """[N, C, H, W] whitened -> the normalised space it was whitened from."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    try:
        centred = np.linalg.solve(transform.T, flat.T).T
    except np.linalg.LinAlgError:
        centred = None
    # A singular transform has no inverse; a numerically singular one gives values that do not whiten back.
    scale = max(float(np.abs(flat).max()), 1.0)
    if centred is None or not np.isfinite(centred).all() or np.abs(centred @ transform - flat).max() > 1e-3 * scale:
        raise InputError("the whitening's transform is singular, so the set cannot be un-whitened",
                         "save the transform fitted with a regularising epsilon (kornia ZCAWhitening's eps), or "
                         "re-save the set un-whitened")
    return (centred + mean).reshape(x.shape).astype(np.float32)


def whiten(x: np.ndarray, mean: np.ndarray, transform: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float64)
    return ((flat - mean) @ transform).reshape(x.shape).astype(np.float32)
