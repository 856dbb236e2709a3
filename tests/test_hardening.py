"""Interruption (SIGKILL, SIGINT), several processes, and the remaining bad-input cases of `recover`."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error, make_images
from diver_lite.cli.main import cli
from diver_lite.core.config import RecoverConfig
from diver_lite.layouts import read_set
from diver_lite.errors import InputError, StorageError
from diver_lite.pipeline.run import recover
CLI = [sys.executable, "-m", "diver_lite.cli.main"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")
BIG = 160        # images: enough batches of 2 that a kill 0-0.5 s after the first image lands mid-run


def _set(path: Path, n: int) -> Path:
    torch.save({"data": [[torch.from_numpy(make_images(n, seed=2)), torch.arange(n) % 10]], "res": 32}, path)
    return path


def _recover_cmd(src, out, *extra):
    return [*CLI, "recover", str(src), "-o", str(out), "--model", "tiny-random", "--batch-size", "2",
            "--sampler", "ddpm", "--t-init", "9", "--steps", "10", "-q", *extra]


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    src = _set(folder / "set.pt", BIG)
    reference = folder / "reference"
    subprocess.run(_recover_cmd(src, reference), check=True, env=ENV, capture_output=True)
    return src, read_set(reference / "set.pt").images


def _wait_for_first_image(out: Path, proc, timeout: float = 60.0):
    images = out / ".diver-lite" / "images"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if images.is_dir() and any(images.iterdir()):
            return
        time.sleep(0.02)


@pytest.mark.xdist_group("big_set")   # one worker builds the reference set for both
def test_sigkill_at_a_random_point_then_resume_gives_the_uninterrupted_set(tmp_path, big_set):
    src, reference = big_set
    out = tmp_path / "out"
    proc = subprocess.Popen(_recover_cmd(src, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_first_image(out, proc)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "set.pt").exists() or proc.returncode == 0
    cached_before = len(list((out / ".diver-lite" / "images").glob("[0-9]*.safetensors")))
    # A write cut by SIGKILL can leave its temporary file (hidden, never under a result's name); resume removes it.
    assert all(p.name.startswith(".") for p in (out / ".diver-lite" / "images").iterdir()
               if not p.name[0].isdigit())
    done = subprocess.run(_recover_cmd(src, out, "--resume"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(out.rglob(".*tmp*"))
    report = json.loads((out / "report.json").read_text())
    assert report["images_before_resume"] == cached_before
    assert report["images_before_resume"] + report["images_this_run"] <= BIG + 2  # at most one batch redone
    assert np.array_equal(read_set(out / "set.pt").images, reference)


@pytest.mark.xdist_group("big_set")   # one worker builds the reference set for both
def test_sigint_stops_after_the_current_batch_with_a_resume_hint(tmp_path, big_set):
    src, reference = big_set
    out = tmp_path / "out"
    proc = subprocess.Popen(_recover_cmd(src, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_first_image(out, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    cached = sorted(int(p.stem) for p in (out / ".diver-lite" / "images").glob("*.safetensors"))
    assert len(cached) % 2 == 0 and cached == list(range(len(cached)))  # whole batches, in order
    assert not (out / "set.pt").exists()
    subprocess.run(_recover_cmd(src, out, "--resume"), env=ENV, check=True, capture_output=True)
    assert np.array_equal(read_set(out / "set.pt").images, reference)


@pytest.mark.slow   # the sharding itself: test_explicit_shards_merge_when_the_last_one_finishes, in the default run
def test_two_processes_under_torchrun_equal_one_process_bit_for_bit(tmp_path):
    src = _set(tmp_path / "set.pt", 21)
    single, multi = tmp_path / "single", tmp_path / "multi"
    subprocess.run(_recover_cmd(src, single), env=ENV, check=True, capture_output=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           *_recover_cmd(src, multi)[2:]]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.array_equal(read_set(multi / "set.pt").images, read_set(single / "set.pt").images)
    report = json.loads((multi / "report.json").read_text())
    assert report["merged"] and report["shard"][1] == 2
    assert sorted(p.name for p in (multi / "png").rglob("*.png")) == sorted(
        p.name for p in (single / "png").rglob("*.png"))


def test_explicit_shards_merge_when_the_last_one_finishes(tmp_path, tiny_models):
    from diver_lite.pipeline.run_state import Shard

    src = _set(tmp_path / "set.pt", 9)
    config = RecoverConfig(batch_size=2)
    first = recover(src, tmp_path / "o", config, model=tiny_models, device="cpu", shard=Shard(1, 3))
    assert not first["merged"] and first["images_this_run"] == 3 and not (tmp_path / "o" / "set.pt").exists()
    recover(src, tmp_path / "o", config, model=tiny_models, device="cpu", shard=Shard(0, 3))
    last = recover(src, tmp_path / "o", config, model=tiny_models, device="cpu", shard=Shard(2, 3))
    assert last["merged"] and (tmp_path / "o" / "set.pt").exists()
    whole = recover(src, tmp_path / "w", config, model=tiny_models, device="cpu")
    assert np.array_equal(read_set(tmp_path / "o" / "set.pt").images, read_set(whole["output"]["set"]).images)


def test_full_disk_is_a_runtime_error_that_keeps_finished_images(tmp_path, tiny_models, monkeypatch):
    src = _set(tmp_path / "set.pt", 4)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("safetensors.numpy.save_file", full)
    with pytest.raises(StorageError, match="No space left") as err:
        recover(src, tmp_path / "out", RecoverConfig(batch_size=2), model=tiny_models, device="cpu")
    assert err.value.exit_code == 1 and "--resume" in err.value.hint
    assert not list((tmp_path / "out").rglob("*.tmp*")) and not (tmp_path / "out" / "set.pt").exists()


@pytest.mark.parametrize("args, code, needle", [
    (["-o", "{tmp}/file.txt/out"], 2, "cannot write to"),
    (["--subset", "imagenette", "--model", "tiny-random", "--class-map", "{tmp}/map.json"], 2, "only one"),
    (["--shard", "3/2"], 2, "shard 3/2"),
    (["--shard", "x"], 2, "not K/N"),
])
def test_more_bad_command_lines(tmp_path, args, code, needle):
    src = _set(tmp_path / "set.pt", 2)
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "map.json").write_text("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["recover", str(src), "--model", "tiny-random"] + ([] if "-o" in args else ["-o", str(tmp_path / "o")])
    assert_one_line_error(CliRunner().invoke(cli, base + args), code, needle)


def test_soft_labels_wider_than_the_class_map(tmp_path):
    folder = tmp_path / "mtt"
    folder.mkdir()
    torch.save(torch.from_numpy(make_images(2)), folder / "images_best.pt")
    torch.save(torch.softmax(torch.randn(2, 12), 1), folder / "labels_best.pt")
    result = CliRunner().invoke(cli, ["recover", str(folder), "-o", str(tmp_path / "o"), "--model", "tiny-random",
                                      "--subset", "imagenette"])
    assert_one_line_error(result, 2, "covers 10 labels but the set has 12")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, needle", [(b"PK\x03\x04garbage", "not a readable npz"),
                                             (b"", "not a readable npz")])
def test_corrupt_npz(tmp_path, content, needle):
    (tmp_path / "bad.npz").write_bytes(content)
    result = CliRunner().invoke(cli, ["recover", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "o"), "--model",
                                      "tiny-random"])
    assert_one_line_error(result, 2, needle)


def test_corrupt_image_in_a_folder(tmp_path):
    (tmp_path / "set" / "cat").mkdir(parents=True)
    (tmp_path / "set" / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = CliRunner().invoke(cli, ["recover", str(tmp_path / "set"), "-o", str(tmp_path / "o"), "--model",
                                      "tiny-random"])
    assert_one_line_error(result, 2, "not a readable image")


def test_resuming_with_another_model_is_refused(tmp_path, tiny_model_dir):
    src = _set(tmp_path / "set.pt", 2)
    runner = CliRunner()
    assert runner.invoke(cli, ["recover", str(src), "-o", str(tmp_path / "o"), "--model", "tiny-random",
                               "-q"]).exit_code == 0
    result = runner.invoke(cli, ["recover", str(src), "-o", str(tmp_path / "o"), "--model", str(tiny_model_dir),
                                 "--resume"])
    assert_one_line_error(result, 2, "different model")


def test_a_set_larger_than_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """An npz whose header declares 196 GB (and holds nothing) is refused from the header alone."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (10**6, 256, 256, 3)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("images.npy", header.getvalue())  # the header (with its magic) and no data
        buf = io.BytesIO()
        np.save(buf, np.zeros(10**6, np.int64))
        zf.writestr("labels.npy", buf.getvalue())
    with pytest.raises(InputError, match="GiB of memory"):
        read_set(tmp_path / "huge.npz")
    # The same check guards .pt files (memory-mapped, sized before any copy) and image folders.
    monkeypatch.setattr("diver_lite.layouts.tensors.available_memory", lambda: 1000)
    with pytest.raises(InputError, match="GiB of memory"):
        read_set(_set(tmp_path / "small.pt", 2))


def test_resume_removes_the_temporary_file_of_a_killed_write(tmp_path):
    src = _set(tmp_path / "set.pt", 4)
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["recover", str(src), "-o", str(out), "--model", "tiny-random", "--batch-size", "2", "-q"]
    assert runner.invoke(cli, args).exit_code == 0
    images = out / ".diver-lite" / "images"
    (images / "00000003.safetensors").unlink()                        # as if killed while writing image 3
    stale = images / ".00000003.safetensors.k1ll3d.tmp"
    stale.write_bytes(b"half an image")
    res = runner.invoke(cli, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert not stale.exists() and (images / "00000003.safetensors").is_file()
    assert json.loads((out / "report.json").read_text())["images_this_run"] == 2   # the cut batch, redone
