"""Hardening, round three: what a run reads and produces. Integer pixels are pixels (read by their range, written
back in their dtype), booleans, complex numbers, sparse tensors and non-finite soft labels are refused in one line."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error
from diver_lite.cli.main import cli
from diver_lite.layouts import read_set


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def recover(src, out, *extra):
    result = run("recover", src, "-o", out, "--model", "tiny-random", "--t-init", "3", "--steps", "4", "--no-png",
                 "-q", *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def grey_ramp(n=4, size=16, top=255):
    """[N, H, W, 3] integer images spanning 0..top: real pixel values, as people hand them over."""
    ramp = np.linspace(0, top, size * size).reshape(size, size)
    return np.stack([np.repeat(np.roll(ramp, k, axis=0)[..., None], 3, axis=2) for k in range(n)])


@pytest.mark.parametrize("dtype,top", [("int64", 255), ("uint8", 255), ("uint16", 65535), ("int32", 255)])
def test_integer_npz_pixels_are_read_as_pixels_and_written_back_in_their_dtype(tmp_path, dtype, top):
    src = tmp_path / "set.npz"
    images = grey_ramp(top=top).round().astype(dtype)
    np.savez(src, images=images, labels=np.arange(4) % 2)
    dset = read_set(src)
    assert dset.pixel_space == "unit" and 0 <= dset.images.min() and dset.images.max() == pytest.approx(1.0)
    report = recover(src, tmp_path / "out")
    assert report["input"]["pixel_space"] == "unit"
    with np.load(tmp_path / "out" / "set.npz") as z:
        back = z["images"]
    assert back.dtype == np.dtype(dtype) and back.shape == images.shape
    assert back.min() >= 0 and back.max() <= top and back.max() > top // 4   # pixels, not values in [-2, 2]


def test_an_integer_dm_set_is_pixels_too(tmp_path):
    src = tmp_path / "dm.pt"
    x = torch.from_numpy(grey_ramp(top=255).transpose(0, 3, 1, 2).copy()).to(torch.uint8)
    torch.save({"data": [[x, torch.tensor([0, 1, 0, 1])]], "res": 16}, src)
    recover(src, tmp_path / "out")
    back = torch.load(tmp_path / "out" / "dm.pt", weights_only=True)["data"][0][0]
    assert back.dtype == torch.uint8 and int(back.max()) > 60
    assert_one_line_error(run("recover", src, "-o", tmp_path / "o2", "--model", "tiny-random", "--pixel-space",
                              "imagenet"), 2, "integer pixel values")


@pytest.mark.parametrize("make,needle", [
    (lambda: torch.zeros(4, 3, 16, 16, dtype=torch.bool), "booleans"),
    (lambda: torch.zeros(4, 3, 16, 16, dtype=torch.complex64), "complex"),
    (lambda: torch.zeros(4, 3, 16, 16).to_sparse(), "sparse"),
    (lambda: torch.full((4, 3, 16, 16), 300, dtype=torch.int64) * torch.tensor(-1), "not pixel values")])
def test_images_that_are_not_pixels_are_refused_in_one_line(tmp_path, make, needle):
    src = tmp_path / "dm.pt"
    torch.save({"data": [[make(), torch.tensor([0, 1, 0, 1])]], "res": 16}, src)
    assert_one_line_error(run("recover", src, "-o", tmp_path / "out", "--model", "tiny-random"), 2, needle)
    assert not (tmp_path / "out").exists()


def test_non_finite_soft_labels_are_refused(tmp_path):
    folder = tmp_path / "mtt"
    folder.mkdir()
    torch.save(torch.randn(4, 3, 16, 16), folder / "images_best.pt")
    soft = torch.softmax(torch.randn(4, 3), 1)
    soft[1, 2] = float("nan")
    torch.save(soft, folder / "labels_best.pt")
    assert_one_line_error(run("recover", folder, "-o", tmp_path / "out", "--model", "tiny-random"), 2,
                          "soft labels contain NaN")
    np.savez(tmp_path / "s.npz", images=np.zeros((4, 16, 16, 3), np.float32),
             labels=np.array([[1, 0], [0, np.inf], [1, 0], [0, 1]], np.float32))
    assert_one_line_error(run("recover", tmp_path / "s.npz", "-o", tmp_path / "out2", "--model", "tiny-random"), 2,
                          "soft labels contain NaN")
    np.savez(tmp_path / "b.npz", images=np.zeros((4, 16, 16, 3), bool), labels=np.arange(4))
    assert_one_line_error(run("recover", tmp_path / "b.npz", "-o", tmp_path / "out3", "--model", "tiny-random"), 2,
                          "booleans")


def test_a_resumed_run_whose_model_changed_in_place_is_refused(tmp_path, dm_file, tiny_model_dir):
    """run.json names the model by content: a shard recovered with one model's weights, the weights retrained in
    place, then --resume: refused, where it used to mix images of both models."""
    import shutil

    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    out = tmp_path / "out"
    first = run("recover", dm_file, "-o", out, "--model", model, "--shard", "0/2", "--batch-size", "2", "-q")
    assert first.exit_code == 0, first.output
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    save_file({k: v + 0.01 for k, v in state.items()}, weights)        # same names, shapes and size
    again = run("recover", dm_file, "-o", out, "--model", model, "--shard", "1/2", "--batch-size", "2", "-q")
    assert_one_line_error(again, 2, "model_fingerprint")


def test_a_second_writer_is_refused_while_the_first_runs_and_a_dead_ones_lock_is_taken_over(tmp_path, dm_file):
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    recover(dm_file, out)
    locks = out / ".diver-lite" / "locks"
    locks.mkdir(exist_ok=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (locks / f"{sleeper.pid}.single").write_text("")
        assert_one_line_error(run("recover", dm_file, "-o", out, "--model", "tiny-random", "--overwrite"), 2,
                              f"another diver-lite run (pid {sleeper.pid}) is writing to")
    finally:
        sleeper.kill()
        sleeper.wait()
    recover(dm_file, out, "--overwrite")                              # its holder died: the lock is stale
    assert not any(p.name.startswith(f"{sleeper.pid}.") for p in locks.iterdir())
    assert os.getpid() > 0


def test_overwrite_replaces_the_whole_earlier_output(tmp_path, dm_file):
    """--overwrite after a run with PNGs of more images leaves none of the earlier files beside the new output."""
    out = tmp_path / "out"
    result = run("recover", dm_file, "-o", out, "--model", "tiny-random", "--t-init", "3", "--steps", "4", "-q")
    assert result.exit_code == 0, result.output
    assert len(list((out / "png").rglob("*.png"))) == 6
    recover(dm_file, out, "--overwrite")                              # --no-png this time
    assert not (out / "png").exists() and not (out / "grid.png").exists()
    assert sorted(p.name for p in out.iterdir()) == [".diver-lite", "dm_set.pt", "report.json", "report.md", "run.toml"]


@pytest.mark.parametrize("args,needle", [
    (["--sampling-steps", "5000"], "above 1000"),
    (["--cfg-scale", "inf"], "not finite"),
    (["--pixel-mean", "0.5", "--pixel-std", "1e-50"], "std between"),
    (["--pixel-mean", "nan", "--pixel-std", "0.3"], "finite"),
])
def test_values_the_checks_let_through_are_refused_with_the_real_cause(tmp_path, dm_file, args, needle):
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "out", "--model", "tiny-random", *args), 2,
                          needle)
    assert not (tmp_path / "out").exists()


def test_bad_environment_and_provider_names_are_one_line(tmp_path, dm_file, monkeypatch):
    monkeypatch.setenv("RANK", "abc")
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "out", "--model", "tiny-random"), 2,
                          "RANK='abc'")
    monkeypatch.delenv("RANK")
    assert_one_line_error(run("export", "--model", "tiny-random", "-o", tmp_path / "x", "--provider", "cdua"), 2,
                          "unknown ONNX Runtime provider 'cdua'")


def test_the_python_api_refuses_values_before_writing(tmp_path, dm_file):
    from diver_lite import RecoverConfig
    from diver_lite.errors import ConfigError

    for bad in [dict(seed=-1), dict(batch_size=2.5), dict(cfg_scale=float("inf")), dict(num_sampling_steps=5000)]:
        with pytest.raises(ConfigError):
            RecoverConfig(**bad)
    with pytest.raises(ConfigError):
        RecoverConfig.from_preset("dm", 0)


def test_imported_runs_outside_0_100_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    from diver_lite.experiments.fashion_mnist import data as fm

    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    assert run("distill", "-o", tmp_path / "r.pt", "--method", "random-real", "--ipc", "2").exit_code == 0
    ok = run("evaluate", tmp_path / "r.pt", "-o", tmp_path / "ev", "--students", "convnet", "--seeds", "1",
             "--epochs", "1")
    assert ok.exit_code == 0, ok.output
    record = json.loads((tmp_path / "ev" / "results.json").read_text())
    record["results"][str(tmp_path / "r.pt")]["students"]["convnet"]["runs"] = [999.0]
    (tmp_path / "bad.json").write_text(json.dumps(record))
    result = run("evaluate", tmp_path / "r.pt", "-o", tmp_path / "ev2", "--students", "convnet", "--seeds", "1",
                 "--epochs", "1", "--import-runs", tmp_path / "bad.json")
    assert_one_line_error(result, 2, "not 0-100 %")
    assert not (tmp_path / "ev2" / "results.png").exists()


@pytest.mark.parametrize("name", ["report.json", "png", "grid.png", "run.toml"])
def test_a_set_named_like_the_runs_own_outputs_is_refused_up_front(tmp_path, name):
    if name == "png":                                   # an image folder named png: previews would mix with it
        src = tmp_path / "png"
        for c in ("a", "b"):
            (src / c).mkdir(parents=True)
            from PIL import Image

            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(src / c / "0.png")
    else:
        src = tmp_path / name
        torch.save({"data": [[torch.randn(2, 3, 16, 16), torch.tensor([0, 1])]], "res": 16}, src)
    out = tmp_path / "out"
    assert_one_line_error(run("recover", src, "-o", out, "--model", "tiny-random", "--layout",
                              "folder" if name == "png" else "dm"), 2, "a name the run's own")
    assert not out.exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written into: a read-only bind mount where the test may make one (root), else a
    folder without write permission (any other user)."""
    import os
    import subprocess

    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode == 0 and \
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode == 0
    if not mounted:
        os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("no read-only folder can be made here")
        yield ro
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], capture_output=True)
        os.chmod(ro, 0o755)


def test_an_unwritable_output_is_refused_before_any_work_by_every_command(read_only_folder, dm_file):
    locked = read_only_folder
    for args in (["recover", dm_file, "-o", locked / "o", "--model", "tiny-random"],
                 ["export", "--model", "tiny-random", "-o", locked / "x"],
                 ["evaluate", dm_file, "-o", locked / "e"],
                 ["train-prior", "-o", locked / "p"],
                 ["distill", "--method", "mtt", "-o", locked / "m"]):
        assert_one_line_error(run(*args), 2, "cannot be written")


def test_a_file_size_limit_ends_in_one_line_and_leaves_no_half_written_file(tmp_path):
    """`ulimit -f` in a subprocess: the set cannot be written whole; one line, exit 1, no truncated set."""
    import subprocess
    import sys

    src = tmp_path / "big.pt"
    torch.save({"data": [[torch.randn(64, 3, 32, 32), torch.arange(64) % 4]], "res": 32}, src)
    out = tmp_path / "out"
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000)); "
            f"from diver_lite.cli.main import main; import sys; "
            f"sys.argv = ['diver-lite', 'recover', {str(src)!r}, '-o', {str(out)!r}, '--model', 'tiny-random', "
            f"'--t-init', '1', '--steps', '1', '--no-png', '-q']; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:") or "Traceback" in line]
    assert result.returncode == 1 and len(lines) == 1 and "cannot write" in lines[0], result.stderr[-1500:]
    assert not (out / "big.pt").exists()


def test_sigterm_to_an_evaluation_with_workers_leaves_no_worker_running(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "r.pt"
    torch.save({"data": [[torch.randn(20, 3, 32, 32), torch.arange(20) % 10]], "res": 32}, src)
    proc = subprocess.Popen([sys.executable, "-m", "diver_lite.cli.main", "evaluate", str(src), "-o",
                             str(tmp_path / "ev"), "--students", "convnet,mlp", "--seeds", "4", "--epochs", "300",
                             "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def workers() -> list[int]:      # the pool's processes (not multiprocessing's resource tracker)
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if "spawn_main" in cmdline(int(p))]

    def cmdline(pid: int) -> str:
        try:
            return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            return ""

    def running(pid: int) -> bool:   # a zombie waiting to be reaped is not running
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 60
    while time.time() < deadline and len(workers()) < 2:
        time.sleep(0.5)
    started = workers()
    assert len(started) == 2, proc.stderr.read() if proc.poll() is not None else "no workers started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.time() + 15
    while time.time() < deadline and any(running(w) for w in started):
        time.sleep(0.5)
    assert [(w, cmdline(w)[:80]) for w in started if running(w)] == []
    assert "Interrupted" in proc.stderr.read()


def test_long_work_is_not_started_when_it_could_only_fail_afterwards(tmp_path):
    """A damaged metrics.json in --continue-from, or an --experts-dir that is a file, is refused before any
    training (both used to fail after all of it)."""
    import shutil

    from diver_lite.models.source import EMBEDDED_DEFAULT

    prior = tmp_path / "prior"
    shutil.copytree(EMBEDDED_DEFAULT, prior)
    (prior / "metrics.json").write_text("{not json")
    assert_one_line_error(run("train-prior", "-o", tmp_path / "p2", "--continue-from", prior, "--dit-steps", "1"),
                          2, "metrics.json is damaged")
    (tmp_path / "experts").write_text("a file")
    assert_one_line_error(run("distill", "--method", "mtt", "-o", tmp_path / "m", "--experts-dir",
                              tmp_path / "experts"), 2, "is a file")
    assert not (tmp_path / "p2" / "transformer").exists() and not (tmp_path / "m" / "images_best.pt").exists()


def test_nothing_is_written_inside_a_model_or_graphs_folder(tmp_path, dm_file, tiny_model_dir):
    assert_one_line_error(run("recover", dm_file, "-o", tiny_model_dir / "rec", "--model", tiny_model_dir), 2,
                          "lies inside the input")
    from diver_lite.models.source import EMBEDDED_DEFAULT

    assert_one_line_error(run("recover", dm_file, "-o", EMBEDDED_DEFAULT / "rec"), 2, "lies inside the input")
    assert_one_line_error(run("train-prior", "-o", EMBEDDED_DEFAULT / "again", "--continue-from", EMBEDDED_DEFAULT),
                          2, "lies inside the input")
    assert not (tiny_model_dir / "rec").exists() and not (EMBEDDED_DEFAULT / "rec").exists()


def test_an_occupied_output_names_only_options_the_command_has(tmp_path, dm_file):
    (tmp_path / "ev" / ".diver-lite").mkdir(parents=True)
    (tmp_path / "ev" / "results.json").write_text("{}")
    result = run("evaluate", dm_file, "-o", tmp_path / "ev")
    assert_one_line_error(result, 2, "--resume")
    assert "--overwrite" not in result.output


def test_the_python_api_refuses_wrong_types_in_one_line_before_writing(tmp_path, dm_file):
    from diver_lite import EngineSpec
    from diver_lite import recover as api_recover
    from diver_lite.errors import ConfigError

    out = tmp_path / "out"
    for call in (lambda: api_recover(dm_file, out, {"t_init": 3}),
                 lambda: api_recover(dm_file, out, engine="cpu"),
                 lambda: api_recover(dm_file, out, model=42),
                 lambda: EngineSpec(budget_gb=float("nan")),
                 lambda: EngineSpec(budget_gb=-1)):
        with pytest.raises(ConfigError):
            call()
    assert not out.exists()
