"""Students and the cross-architecture evaluation, at a few epochs on the vendored subset."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from diver_lite import fashion_mnist as fm
from diver_lite.cli.main import cli
from diver_lite.evaluate import EvalConfig, evaluate_set
from diver_lite.prepare import from_unit
from diver_lite.students import STUDENTS


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_every_student_takes_32x32_rgb(name):
    model = STUDENTS[name](num_classes=10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_students_learn_from_real_images():
    images, labels, _ = fm.load("train")
    test, test_labels, _ = fm.load("test")
    x, tx = from_unit(fm.to_images(images[:500]), "imagenet"), from_unit(fm.to_images(test[:300]), "imagenet")
    cfg = EvalConfig(students=("convnet", "mlp"), seeds=(0, 1), epochs=8, batch=64, dsa="none")
    result = evaluate_set(x, labels[:500], tx, test_labels[:300], cfg)
    conv = result["students"]["convnet"]
    assert len(conv["runs"]) == 2 and conv["mean"] > 40, conv            # chance is 10 %
    assert result["cross_arch"] == result["students"]["mlp"]["mean"]     # the proxy is left out


def test_evaluate_cli_writes_table_json_and_chart(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    runner = CliRunner()
    assert runner.invoke(cli, ["distill", "-o", str(tmp_path / "r.pt"), "--method", "random-real",
                               "--ipc", "2"]).exit_code == 0
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "r.pt"), "-o", str(tmp_path / "ev"), "--students",
                                 "convnet,lenet", "--seeds", "1", "--epochs", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "ev" / "results.json").read_text())
    row = data["results"][str(tmp_path / "r.pt")]
    assert set(row["students"]) == {"convnet", "lenet"} and row["cross_arch"] == row["students"]["lenet"]["mean"]
    assert "| convnet | lenet | cross-arch |" in (tmp_path / "ev" / "results.md").read_text()
    assert (tmp_path / "ev" / "results.png").stat().st_size > 0
    bad = runner.invoke(cli, ["evaluate", str(tmp_path / "r.pt"), "-o", str(tmp_path / "ev2"), "--students", "vgg"])
    assert bad.exit_code == 2 and "unknown students" in bad.output


def test_imagenet_subset_protocol_with_a_local_val_folder(tmp_path):
    """A fake val folder (two classes of 64x64 images) stands in for ImageNet's."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("n01440764", "n02102040")):
        (tmp_path / "val" / name).mkdir(parents=True)
        for k in range(3):
            Image.fromarray((rng.random((64, 64, 3)) * 255 * (c + 1) / 2).astype(np.uint8)).save(
                tmp_path / "val" / name / f"{k}.JPEG", format="JPEG")
    torch.save({"data": [[torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])]], "res": 32}, tmp_path / "s.pt")
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "s.pt"), "-o", str(tmp_path / "ev"),
                                      "--students", "convnet", "--seeds", "1", "--epochs", "1", "--test-folder",
                                      str(tmp_path / "val")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    acc = json.loads((tmp_path / "ev" / "results.json").read_text())["results"][str(tmp_path / "s.pt")]
    assert 0 <= acc["students"]["convnet"]["mean"] <= 100
