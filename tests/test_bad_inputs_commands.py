"""Bad input to distill, evaluate, train-prior, profile and export: one line with the fix, exit code 2, nothing
written."""

import gzip
import shutil

import pytest
import torch
from click.testing import CliRunner

from diver_lite.cli.main import cli
from diver_lite.experiments.fashion_mnist.data import SUBSET

from conftest import assert_one_line_error


@pytest.fixture
def place(tmp_path):
    """A folder with: garbage.pt, wide.pt (labels beyond 10 classes), occupied/, empty/, trunc/ (cut-off IDX)."""
    import numpy as np

    (tmp_path / "garbage.pt").write_bytes(b"not a torch file at all")
    torch.save({"data": [[torch.rand(3, 3, 32, 32), torch.tensor([0, 12, 19])]]}, tmp_path / "wide.pt")
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "keep.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    with np.load(SUBSET) as z:
        images, labels = z["train_images"], z["train_labels"].astype(np.uint8)
    header = b"\x00\x00\x08\x03" + np.array(images.shape, ">u4").tobytes()
    full = gzip.compress(header + images.tobytes())
    (trunc / "train-images-idx3-ubyte.gz").write_bytes(full[: len(full) // 3])
    (trunc / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + np.array(labels.shape, ">u4").tobytes() + labels.tobytes()))
    (trunc / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + np.array([100, 28, 28], ">u4").tobytes()
                                                   + b"\x00" * 100)   # shorter than its header says
    shutil.copy(trunc / "train-labels-idx1-ubyte.gz", trunc / "t10k-labels-idx1-ubyte.gz")
    return tmp_path


CASES = [
    (["distill", "-o", "{p}/set.txt"], "should end in .pt"),
    (["distill", "-o", "{p}/occupied/keep.txt"], "exists"),
    (["distill", "-o", "{p}/d.pt", "--data", "{p}/empty"], "lacks train-images-idx3-ubyte"),
    (["distill", "-o", "{p}/d.pt", "--data", "{p}/trunc", "--iterations", "1"], "cannot be read (EOFError"),
    (["distill", "-o", "{p}/d.pt", "--ipc", "1000000"], "exceeds the"),
    (["evaluate", "{p}/garbage.pt", "-o", "{p}/e"], "not a readable torch file"),
    (["evaluate", "{p}/missing.pt", "-o", "{p}/e"], "does not exist"),
    (["evaluate", "{p}/wide.pt", "-o", "{p}/e"], "outside the test split's 10 classes"),
    (["evaluate", "{p}/wide.pt", "-o", "{p}/occupied"], "is not empty"),
    (["evaluate", "{p}/wide.pt", "-o", "{p}/e", "--students", "convnet,alexnet"], "unknown students ['alexnet']"),
    (["evaluate", "{p}/wide.pt", "-o", "{p}/e", "--test-folder", "{p}/empty"], "no <class>/<image> subfolders"),
    (["evaluate", "{p}/wide.pt", "-o", "{p}/e", "--data", "{p}/trunc"], "shorter than its header says"),
    (["train-prior", "-o", "{p}/occupied"], "is not empty"),
    (["train-prior", "-o", "{p}/t", "--data", "{p}/trunc"], "cannot be read"),
    (["train-prior", "-o", "{p}/t", "--dit-width", "100"], "not a multiple of 32"),
    (["train-prior", "-o", "{p}/t", "--device", "tpu"], "unknown device 'tpu'"),
    (["profile", "{p}/garbage.pt", "-o", "{p}/pr", "--plans", "bf16", "--model", "tiny-random"],
     "not a readable torch file"),
    (["export", "-o", "{p}/occupied"], "is not empty"),
    (["export", "-o", "{p}/x", "--model", "{p}/no-model"], "does not exist"),
]


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a[:1] + [n[:24]]) for a, n in CASES])
def test_bad_input_is_one_line_with_the_fix(place, args, needle):
    before = sorted(p.name for p in place.rglob("*"))
    res = CliRunner().invoke(cli, [a.replace("{p}", str(place)) for a in args])
    assert_one_line_error(res, 2, needle)
    assert sorted(p.name for p in place.rglob("*")) == before        # nothing written
    assert (place / "occupied" / "keep.txt").read_text() == "mine"
