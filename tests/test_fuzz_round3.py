"""Generated inputs of round three: sets of every dtype (integers of each width, booleans, complex, half floats) in
DM files and npz arrays, image folders with 16-bit RGB PNGs, unread formats and empty class folders, and damaged
`--import-runs` files. The contract is test_fuzz_readers.py's (exit 0, or 1/2 in at most 3 lines, no traceback,
nothing written on failure, the input unchanged), plus: a set that recovers comes back in its own dtype, and an
import that is accepted holds accuracies of 0-100 % only. `-m slow` runs 300 examples each."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from test_fuzz_readers import FAST, LONG, TINY, check_contract, tensor_file, with_tmp

DTYPES = ["uint8", "int8", "int16", "int32", "int64", "uint16", "bool", "complex64", "float16", "float64"]
TORCH_DTYPES = ["uint8", "int8", "int16", "int32", "int64", "bool", "complex64", "float16", "float64"]
VALUES = st.sampled_from(["zeros", "ramp", "top", "negative", "huge"])


def pixels(dtype: str, values: str, shape=(2, 3, 16, 16)) -> np.ndarray:
    kind = np.dtype(dtype)
    top = {"uint16": 65535, "bool": 1}.get(dtype, 255)
    ramp = np.linspace(0, top, int(np.prod(shape))).reshape(shape)
    x = {"zeros": np.zeros(shape), "ramp": ramp, "top": np.full(shape, top), "negative": ramp - top / 2,
         "huge": ramp * 1e6}[values]
    if kind.kind in "iu":
        info = np.iinfo(kind)
        x = np.clip(x, info.min, info.max)
    return x.astype(kind)


def check_dtype_kept(src_dtype, out_set: Path, read):
    """A set that recovered comes back in the dtype it was handed over in."""
    if out_set.exists():
        assert read(out_set) == src_dtype, (read(out_set), src_dtype)


def fuzz_dm_dtype(tmp: Path, dtype: str, values: str):
    src = tmp / "set.pt"
    images = torch.from_numpy(pixels(dtype, values))
    src.write_bytes(tensor_file({"data": [[images, torch.tensor([0, 1])]], "res": 16}))
    event(f"exit {check_contract(['recover', src, '-o', tmp / 'out', *TINY], src, tmp / 'out')}")
    check_dtype_kept(images.dtype, tmp / "out" / "set.pt",
                     lambda p: torch.load(p, weights_only=True)["data"][0][0].dtype)


def fuzz_npz_dtype(tmp: Path, dtype: str, values: str, channels_last: bool):
    from diver_lite.layouts.files import savez

    src = tmp / "set.npz"
    images = pixels(dtype, values)
    images = images.transpose(0, 2, 3, 1) if channels_last else images
    with open(src, "wb") as f:
        savez(f, {"images": images, "labels": np.array([0, 1])})
    event(f"exit {check_contract(['recover', src, '-o', tmp / 'out', *TINY], src, tmp / 'out')}")

    def read(p):
        with np.load(p) as z:
            return z["images"].dtype
    check_dtype_kept(images.dtype, tmp / "out" / "set.npz", read)


@FAST
@given(st.sampled_from(TORCH_DTYPES), VALUES)
def test_fuzz_dm_dtypes(dtype, values):
    with_tmp(fuzz_dm_dtype)(dtype, values)


@FAST
@given(st.sampled_from(DTYPES), VALUES, st.booleans())
def test_fuzz_npz_dtypes(dtype, values, channels_last):
    with_tmp(fuzz_npz_dtype)(dtype, values, channels_last)


FOLDER_FILES = st.lists(st.tuples(st.sampled_from(["png8", "png16-grey", "png16-rgb", "png16-rgba", "gif", "tif",
                                                   "empty-dir", "txt"]), st.integers(4, 24)), min_size=1, max_size=5)


def fuzz_folder(tmp: Path, files):
    from PIL import Image

    from diver_lite.layouts import png16

    src = tmp / "set"
    src.mkdir()
    rng = np.random.default_rng(len(files))
    for k, (kind, size) in enumerate(files):
        folder = src / f"c{k % 3}"
        folder.mkdir(exist_ok=True)
        if kind == "png8":
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{k}.png")
        elif kind.startswith("png16"):
            channels = {"grey": 1, "rgb": 3, "rgba": 4}[kind.split("-")[1]]
            samples = rng.integers(0, 65535, (size, size, channels), dtype=np.uint16)
            data = png16.encode(samples[..., :3] if channels == 4 else samples)
            if channels == 4:       # colour type 6: rewrite the header and data with an alpha channel
                data = _rgba_png(samples)
            (folder / f"{k}.png").write_bytes(data)
        elif kind in ("gif", "tif"):
            Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(folder / f"{k}.{kind}")
        elif kind == "txt":
            (folder / f"{k}.txt").write_text("notes")
        else:
            (src / f"empty{k}").mkdir()
    event(f"exit {check_contract(['recover', src, '-o', tmp / 'out', *TINY], src, tmp / 'out')}")


def _rgba_png(samples: np.ndarray) -> bytes:
    import struct
    import zlib

    from diver_lite.layouts import png16

    h, w, _ = samples.shape
    rows = samples.astype(">u2").reshape(h, w * 4).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (png16.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@FAST
@given(FOLDER_FILES)
def test_fuzz_image_folders_of_round_three(files):
    with_tmp(fuzz_folder)(files)


# ------------------------------------------------------------------------------------------------ --import-runs

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A real results.json of a one-seed, one-student evaluation (and its set), made once."""
    from click.testing import CliRunner

    from diver_lite.cli.main import cli
    from diver_lite.experiments.fashion_mnist import data as fm

    tmp = tmp_path_factory.mktemp("import-runs")
    absent, fm.DEBIAN_ROOT = fm.DEBIAN_ROOT, tmp / "absent"          # the vendored subset: fast and the same
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["distill", "-o", str(tmp / "r.pt"), "--method", "random-real", "--ipc", "1"]
                             ).exit_code == 0
        done = runner.invoke(cli, ["evaluate", str(tmp / "r.pt"), "-o", str(tmp / "ev"), "--students", "mlp",
                                   "--seeds", "1", "--epochs", "1"])
        assert done.exit_code == 0, done.output
    finally:
        fm.DEBIAN_ROOT = absent
    return tmp


VALUE = st.one_of(st.none(), st.booleans(), st.integers(-100, 1000), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=6), st.lists(st.floats(-50, 150), max_size=3), st.dictionaries(
                      st.sampled_from(["runs", "raw_runs", "students", "mlp", "x"]), st.none(), max_size=2))


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    obj[path[0]] = _replace(obj[path[0]], path[1:], value)
    return obj


@FAST
@given(st.data())
def test_fuzz_import_runs(evaluated, monkeypatch_module, data):
    fuzz_import_runs(evaluated, monkeypatch_module, data)


@pytest.mark.slow
@LONG
@given(st.data())
def test_fuzz_import_runs_long(evaluated, monkeypatch_module, data):
    fuzz_import_runs(evaluated, monkeypatch_module, data)


def fuzz_import_runs(evaluated, monkeypatch_module, data):
    from diver_lite.experiments.fashion_mnist import data as fm

    record = json.loads((evaluated / "ev" / "results.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):     # each change picks among the paths the record has now
        paths = [p for p in _paths(record) if p[:1] != ("config",) or len(p) <= 2]
        record = _replace(record, data.draw(st.sampled_from(paths)), data.draw(VALUE))
    text = data.draw(st.sampled_from(["json", "cut", "bytes"]))
    raw = json.dumps(record, allow_nan=True)
    raw = {"json": raw, "cut": raw[:len(raw) // 2], "bytes": raw.replace('"', "\x00", 3)}[text]

    def run(tmp: Path):
        (tmp / "runs.json").write_text(raw)
        shutil.copy(evaluated / "r.pt", tmp / "r.pt")
        code = check_contract(["evaluate", tmp / "r.pt", "-o", tmp / "ev", "--students", "mlp", "--seeds", "1",
                               "--epochs", "1", "--import-runs", tmp / "runs.json"], tmp / "runs.json", tmp / "ev")
        event(f"exit {code}")
        if code == 0:
            accuracies = json.loads((tmp / "ev" / "results.json").read_text())["results"]
            runs = [v for r in accuracies.values() for s in r["students"].values() for v in s["runs"]]
            assert all(isinstance(v, (int, float)) and 0 <= v <= 100 for v in runs), runs
    monkeypatch_module.setattr(fm, "DEBIAN_ROOT", evaluated / "absent")
    with_tmp(run)()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.slow
@LONG
@given(st.sampled_from(TORCH_DTYPES), VALUES)
def test_fuzz_dm_dtypes_long(dtype, values):
    with_tmp(fuzz_dm_dtype)(dtype, values)


@pytest.mark.slow
@LONG
@given(st.sampled_from(DTYPES), VALUES, st.booleans())
def test_fuzz_npz_dtypes_long(dtype, values, channels_last):
    with_tmp(fuzz_npz_dtype)(dtype, values, channels_last)


@pytest.mark.slow
@LONG
@given(FOLDER_FILES)
def test_fuzz_image_folders_long(files):
    with_tmp(fuzz_folder)(files)
