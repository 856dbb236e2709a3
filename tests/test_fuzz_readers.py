"""Generated malformed inputs for every reader (DM, MTT, NCFM, GLaD, npz, image folder, IDX, model folder, ONNX
manifest), through the CLI as a user runs it. The contract: exit 0 (the damage left a valid file) or 1/2 with at
most 3 lines, never a traceback; on failure nothing is written; the input is never changed. A fixed seed and 30
examples per reader in the default suite; `-m slow` runs 300 per reader."""

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_images
from diver_lite.cli.main import cli

TINY = ["--model", "tiny-random", "--t-init", "1", "--steps", "2", "--device", "cpu", "-q", "--no-png"]
FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=300, derandomize=False, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def snapshot(path: Path) -> dict:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): p.read_bytes() for p in files}


def check_contract(args: list, inputs: Path, out: Path) -> int:
    before = snapshot(inputs)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert 1 <= len(lines) <= 3 and "Traceback" not in result.output and lines[-1].startswith("Error:"), \
            result.output
        assert not out.exists() or not any(p for p in out.rglob("*") if p.is_file() and ".diver-lite" not in p.parts
                                           ), list(out.rglob("*"))
    assert snapshot(inputs) == before, "the input was changed"
    return result.exit_code


# ------------------------------------------------------------------------------------------------ damage

def damage(data: bytes, how: str, at: float, byte: int) -> bytes:
    k = int(at * len(data))
    if how == "truncate":
        return data[:k]
    if how == "flip":
        return data[:k] + bytes([(data[k] ^ (byte or 1)) if k < len(data) else byte]) + data[k + 1:]
    if how == "zero":
        return data[:k] + b"\x00" * min(64, len(data) - k) + data[k + 64:]
    return bytes([byte]) * (k % 300)                                    # "garbage"


DAMAGE = st.tuples(st.sampled_from(["truncate", "flip", "zero", "garbage"]), st.floats(0, 1), st.integers(0, 255))


def tensor_file(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


ARRAYS = st.sampled_from([np.zeros((0, 3, 8, 8), np.float32), np.zeros((2, 3, 8, 9), np.float32),
                          np.full((2, 3, 8, 8), np.nan, np.float32), np.zeros((2, 5, 8, 8), np.float32),
                          np.zeros((2, 8, 8), np.float32), np.zeros((2,), np.int64), np.array([-1, 3]),
                          np.zeros((2, 3, 4, 4), np.float32), np.ones((3, 3, 16, 16), np.float64),
                          np.array([0.5, 1.5]), np.zeros((2, 3, 16, 16), np.int8)])
OBJECTS = st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5), ARRAYS.map(torch.from_numpy)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
                           st.sampled_from(["data", "res", "x", "images"]), inner, max_size=3)), max_leaves=6)


def valid_dm() -> bytes:
    return tensor_file({"data": [[torch.from_numpy(make_images(2, 16)), torch.tensor([0, 1])]], "res": 16})


def valid_ncfm() -> bytes:
    return tensor_file([torch.from_numpy(make_images(2, 16)), torch.tensor([0, 1])])


# ------------------------------------------------------------------------------------------------ readers

def with_tmp(fn):
    def run(*args):
        with tempfile.TemporaryDirectory() as tmp:
            fn(Path(tmp), *args)
    return run


def fuzz_pt_file(tmp: Path, make_valid, damage_or_obj, layout: tuple = ()):
    src = tmp / "set.pt"
    kind, value = damage_or_obj
    src.write_bytes(damage(make_valid(), *value) if kind == "damage" else tensor_file(value))
    check_contract(["recover", src, *layout, "-o", tmp / "out", *TINY], src, tmp / "out")


def fuzz_folder_layout(tmp: Path, labels: bool, damage_or_obj, which: str):
    src = tmp / "run"
    src.mkdir()
    good = {"images_best.pt": tensor_file(torch.from_numpy(make_images(10, 16))),
            "labels_best.pt": tensor_file(torch.arange(10))}
    if not labels:
        good.pop("labels_best.pt")
    kind, value = damage_or_obj
    for name, data in good.items():
        if name == which or (which not in good and name == "images_best.pt"):
            data = damage(data, *value) if kind == "damage" else tensor_file(value)
        (src / name).write_bytes(data)
    check_contract(["recover", src, "-o", tmp / "out", *TINY], src, tmp / "out")


PT_INPUT = st.one_of(st.tuples(st.just("damage"), DAMAGE), st.tuples(st.just("object"), OBJECTS))


@FAST
@given(PT_INPUT)
def test_fuzz_dm(value):
    with_tmp(fuzz_pt_file)(valid_dm, value)


@FAST
@given(PT_INPUT)
def test_fuzz_ncfm(value):
    with_tmp(fuzz_pt_file)(valid_ncfm, value, ("--layout", "ncfm"))


@FAST
@given(PT_INPUT, st.sampled_from(["images_best.pt", "labels_best.pt"]))
def test_fuzz_mtt(value, which):
    with_tmp(fuzz_folder_layout)(True, value, which)


@FAST
@given(PT_INPUT)
def test_fuzz_glad(value):
    with_tmp(fuzz_folder_layout)(False, value, "images_best.pt")


NPZ_ARRAYS = st.dictionaries(
    st.sampled_from(["images", "labels", "pixel_space", "file", "allow_pickle", "x"]),
    st.one_of(ARRAYS, st.just(np.array(["a", "b"])), st.just(np.array("imagenet")), st.just(np.array("bogus")),
              st.just((np.random.default_rng(0).random((2, 16, 16, 3)) * 255).astype(np.uint8)),
              st.just(np.array([0, 1])), st.just(np.zeros((2, 16, 16, 3), np.float32) + 5)), max_size=4)


@FAST
@given(st.one_of(st.tuples(st.just("damage"), DAMAGE), st.tuples(st.just("arrays"), NPZ_ARRAYS)))
def test_fuzz_npz(value):
    def run(tmp: Path):
        from diver_lite.layouts.files import savez

        src = tmp / "set.npz"
        kind, v = value
        if kind == "damage":
            buf = io.BytesIO()
            savez(buf, {"images": (np.ones((2, 16, 16, 3)) * 9).astype(np.uint8), "labels": np.array([0, 1])})
            src.write_bytes(damage(buf.getvalue(), *v))
        else:
            with open(src, "wb") as f:
                savez(f, v)
        check_contract(["recover", src, "-o", tmp / "out", *TINY], src, tmp / "out")
    with_tmp(run)()


@FAST
@given(st.lists(st.tuples(st.sampled_from(["png", "png16", "jpg", "txt", "bytes"]), st.integers(1, 40),
                          DAMAGE), min_size=1, max_size=4))
def test_fuzz_image_folder(files):
    def run(tmp: Path):
        from PIL import Image

        src = tmp / "set"
        for k, (kind, size, dmg) in enumerate(files):
            (src / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            if kind == "png16":
                Image.fromarray(np.full((size, size), 40000, np.uint16)).save(buf, format="PNG")
            elif kind in ("png", "jpg"):
                Image.fromarray(np.full((size, size, 3), 120, np.uint8)).save(buf, format="PNG" if kind == "png"
                                                                              else "JPEG")
            data = buf.getvalue() if kind not in ("txt", "bytes") else b"hello"
            if kind == "bytes":
                data = damage(data, *dmg)
            (src / f"c{k % 2}" / f"{k}.{'jpg' if kind == 'jpg' else 'png'}").write_bytes(data)
        check_contract(["recover", src, "-o", tmp / "out", *TINY], src, tmp / "out")
    with_tmp(run)()


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.astype(np.uint8).tobytes()


@FAST
@given(st.sampled_from(["images", "labels"]), DAMAGE, st.booleans())
def test_fuzz_idx(which, dmg, gz):
    def run(tmp: Path):
        import gzip

        data = tmp / "idx"
        data.mkdir()
        files = {"images": ("train-images-idx3-ubyte", idx_bytes(np.zeros((20, 28, 28)))),
                 "labels": ("train-labels-idx1-ubyte", idx_bytes(np.arange(20) % 10))}
        for key, (name, raw) in files.items():
            raw = damage(raw, *dmg) if key == which else raw
            if gz:
                (data / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (data / name).write_bytes(raw)
        check_contract(["distill", "-o", tmp / "out" / "d.pt", "--method", "random-real", "--data", data], data,
                       tmp / "out")
    with_tmp(run)()


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from diver_lite.models.tiny import build_tiny_models
    from diver_lite.models.save import save_models

    return save_models(build_tiny_models(0), tmp_path_factory.mktemp("fuzz-model") / "m")


@FAST
@given(st.sampled_from(["transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
                        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                        "scheduler/scheduler_config.json"]), DAMAGE, st.booleans())
def test_fuzz_model_folder(model_folder, which, dmg, lazy):
    def run(tmp: Path):
        folder = tmp / "model"
        shutil.copytree(model_folder, folder)
        (folder / which).write_bytes(damage((folder / which).read_bytes(), *dmg))
        (tmp / "s.pt").write_bytes(valid_dm())
        extra = ["--ram-budget", "8"] if lazy else []
        check_contract(["recover", tmp / "s.pt", "-o", tmp / "out", "--model", folder, "--device", "cpu", "-q",
                        "--no-png", "--t-init", "1", "--steps", "2", *extra], folder, tmp / "out")
    with_tmp(run)()


@pytest.fixture(scope="module")
def onnx_folder(tiny_onnx_dir):
    return tiny_onnx_dir          # copied before each damage


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 2000), st.floats(allow_nan=False),
                              st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3)), max_leaves=8)


@FAST
@given(st.sampled_from(["format", "graphs", "image_size", "latent_size", "schedule", "null_class", "step_params",
                        "num_classes", "*"]), JSON)
def test_fuzz_onnx_manifest(onnx_folder, key, value):
    def run(tmp: Path):
        folder = tmp / "onnx"
        shutil.copytree(onnx_folder, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest = value if key == "*" else {**manifest, key: value}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        (tmp / "s.pt").write_bytes(valid_dm())
        check_contract(["recover", tmp / "s.pt", "-o", tmp / "out", "--backend", "onnxruntime", "--onnx", folder,
                        "--device", "cpu", "-q", "--no-png", "--t-init", "1", "--steps", "2"], folder, tmp / "out")
    with_tmp(run)()


@pytest.mark.slow
@LONG
@given(st.sampled_from(["dm", "ncfm"]), PT_INPUT)
def test_fuzz_pt_sets_long(layout, value):
    with_tmp(fuzz_pt_file)(valid_dm if layout == "dm" else valid_ncfm, value)
