"""A user's own data: an image folder goes through train-prior -> distill -> recover -> evaluate, on tiny settings
(real Fashion-MNIST images from the vendored subset, saved as PNG class folders of another size)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diver_lite.cli.main import cli
from diver_lite.errors import InputError
from diver_lite.experiments.datasets import held_out, load_images
from diver_lite.experiments.fashion_mnist import data as fm
from diver_lite.layouts import read_set

CLASSES = ("trouser", "bag", "sneaker")          # Fashion-MNIST labels 1, 8, 7: easy to tell apart


def write_folder(root, split: str, per_class: int, size: int = 20):
    images, labels, _ = fm.load(split)
    for name, label in zip(CLASSES, (1, 8, 7)):
        (root / name).mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(labels == label)[:per_class]):
            Image.fromarray(images[i]).resize((size, size)).convert("RGB").save(root / name / f"{k:03d}.png")
    return root


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")      # the vendored subset
    return write_folder(tmp_path / "train", "train", 24), write_folder(tmp_path / "test", "test", 8)


def test_an_image_folder_loads_padded_to_a_multiple_of_eight_with_its_classes(folders):
    data = load_images(folders[0])
    assert data.kind == "folder" and data.classes == sorted(CLASSES) and data.original_size == 20
    assert data.images.shape == (72, 3, 24, 24) and data.images.dtype == np.float32
    first = np.asarray(Image.open(folders[0] / "bag" / "000.png"), np.float32).transpose(2, 0, 1) / 255
    assert np.array_equal(data.images[0][:, 2:22, 2:22], first)          # the PNG's pixels, centred (20 -> 24)
    assert np.array_equal(data.images[0][:, :2, 2:22], np.repeat(first[:, :1], 2, axis=1))   # edge-replicated
    train, test = held_out(data, 0.1)
    assert len(train.labels) + len(test.labels) == 72 and np.bincount(test.labels).tolist() == [2, 2, 2]
    with pytest.raises(InputError, match="larger than 16x16"):
        load_images(folders[0], max_size=16)


def test_train_prior_distill_recover_evaluate_on_an_image_folder(folders, tmp_path):
    train, test = folders
    run = lambda *args: CliRunner().invoke(cli, [str(a) for a in args])  # noqa: E731
    prior = tmp_path / "prior"
    r = run("train-prior", "--data", train, "--test-folder", test, "-o", prior, "--vae-steps", 5, "--dit-steps", 5,
            "--classifier-epochs", 1, "--samples-per-class", 2)
    assert r.exit_code == 0, r.output
    card = (prior / "MODEL_CARD.md").read_text()
    assert "image folder" in card and "bag, sneaker, trouser" in card and "latent 4 x 12 x 12" in card
    metrics = json.loads((prior / "metrics.json").read_text())
    assert metrics["classes"] == sorted(CLASSES) and metrics["samples"] == 6
    assert json.loads((prior / "transformer" / "config.json").read_text())["num_embeds_ada_norm"] == 3

    distilled = tmp_path / "dm.pt"
    r = run("distill", "--data", train, "-o", distilled, "--ipc", 2, "--iterations", 3)
    assert r.exit_code == 0, r.output
    dset = read_set(distilled)
    assert dset.images.shape == (6, 3, 24, 24) and np.bincount(dset.labels).tolist() == [2, 2, 2]

    recovered = tmp_path / "rec"
    r = run("recover", distilled, "-o", recovered, "--model", prior, "-q")
    assert r.exit_code == 0, r.output
    out = read_set(recovered / "dm.pt")
    assert out.images.shape == dset.images.shape and not np.allclose(out.images, dset.images)

    r = run("evaluate", distilled, recovered / "dm.pt", "--data", train, "--test-folder", test, "-o",
            tmp_path / "eval", "--students", "convnet,mlp", "--seeds", 1, "--epochs", 2)
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]
    assert set(results) == {str(distilled), str(recovered / "dm.pt")}
    for r in results.values():      # tested on the 24 images of --test-folder: a multiple of 100/24 %
        accuracy = r["students"]["convnet"]["runs"][0]
        assert 0 <= accuracy <= 100 and abs(accuracy * 24 / 100 - round(accuracy * 24 / 100)) < 1e-6


def test_an_image_folder_without_a_test_split_is_refused_with_the_fix(folders, tmp_path):
    r = CliRunner().invoke(cli, ["distill", "--data", str(folders[0]), "-o", str(tmp_path / "d.pt"), "--ipc", "1",
                                 "--method", "random-real"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "d.pt"), "--data", str(folders[0]), "-o",
                                 str(tmp_path / "e"), "--students", "mlp", "--seeds", "1", "--epochs", "1"])
    assert r.exit_code == 2 and "--test-folder" in r.output
