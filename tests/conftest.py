"""Tiny diffusers models (2-layer DiT, 4-level VAE; same classes and latent layout as DiT-XL/2 + sd-vae) and tiny
distilled sets, built in the tests, on CPU."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diver_lite.models.tiny import build_tiny_models  # noqa: E402
from diver_lite.models.save import save_models  # noqa: E402
from diver_lite.models.tying import tie_embedders  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _tiny_models_built():
    models = build_tiny_models(seed=0)
    models.tied_parameters = tie_embedders(models.transformer)
    models.transformer.eval().requires_grad_(False)
    models.vae.eval().requires_grad_(False)
    return models


@pytest.fixture
def tiny_models(_tiny_models_built):
    """A fresh copy per test: a runtime may cast, move or wrap the models it is given, and no test may see what
    another one did to them."""
    import copy

    return copy.deepcopy(_tiny_models_built)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-dit")
    save_models(build_tiny_models(seed=0), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory, request, _tiny_models_built):
    """The tiny models exported once (fp32, every graph) for every test that reads graphs: read-only by contract
    (a test that changes a graph copies the folder first). Under pytest-xdist the workers share one export (made by
    the first worker that asks, under a file lock, in this run's own temporary folder)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import contextlib
    import copy

    from filelock import FileLock

    from diver_lite.export.onnx import export_models

    if hasattr(request.config, "workerinput"):           # an xdist worker: this run's folder, above each worker's
        shared = tmp_path_factory.getbasetemp().parent
        folder, lock = shared / "onnx-fp32", FileLock(str(shared / "onnx-fp32.lock"))
    else:                                                # -n 0, or no xdist: this session's own folder
        folder, lock = tmp_path_factory.mktemp("onnx-fp32"), contextlib.nullcontext()
    with lock:
        if not (folder / "manifest.json").is_file():     # written last by export_models
            export_models(copy.deepcopy(_tiny_models_built), folder, "fp32")
    return folder


def make_images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth, image-like arrays in ImageNet-normalised space."""
    from diver_lite.core.prepare import from_unit, resize

    low = np.random.default_rng(seed).random((n, channels, 4, 4), dtype=np.float32)
    return from_unit(resize(low, size), "imagenet")


@pytest.fixture(scope="session")
def tiny_backend(_tiny_models_built):
    """Read-only by contract: one torch backend over its own copy of the tiny models, shared by the tests."""
    import copy

    from diver_lite.backends.torch_backend import TorchBackend

    return TorchBackend(copy.deepcopy(_tiny_models_built))


def assert_one_line_error(result, code: int, needle: str) -> None:
    """A CLI failure as users see it: exit `code`, a single line that says `needle`."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], result.output


@pytest.fixture
def dm_file(tmp_path):
    path = tmp_path / "dm_set.pt"
    torch.save({"data": [[torch.from_numpy(make_images(6)), torch.tensor([0, 1, 2, 0, 1, 2])]], "res": 32}, path)
    return path
