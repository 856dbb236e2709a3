"""Hardening, round three, the inputs' last classes: image folders whose class folders are empty or hold formats
the layout does not read (refused, not dropped and renumbered), 16-bit RGB PNGs (kept at 16 bits), whitenings with
non-finite values or no inverse (the whitening is named, not the set), another graph saved under an exported
graph's name, and the Python API's export and profile given the wrong things. Each test failed on the main branch
before these fixes (named per test)."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, make_images
from diver_lite.errors import ConfigError, ExportError, InputError, ModelError
from diver_lite.layouts import png16, read_set
from test_hardening_round3 import recover, run


def rgb16(seed: int, size: int = 16) -> np.ndarray:
    return (np.random.default_rng(seed).random((size, size, 3)) * 65535).astype(np.uint16)


def png_folder(root, classes=("a", "b"), per_class=2, size=16):
    for c in classes:
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(np.full((size, size, 3), 40 * k + 20, np.uint8)).save(root / c / f"{k}.png")
    return root


# Before: the class folder was dropped and the later classes renumbered, exit 0.
@pytest.mark.parametrize("content", ["empty", "gif", "tif"])
def test_a_class_folder_with_nothing_readable_is_refused_not_dropped(tmp_path, content):
    src = png_folder(tmp_path / "set", classes=("a", "b", "c"))
    (tmp_path / "set" / "b0").mkdir()        # sorts between b and c: dropping it would renumber c
    if content != "empty":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(src / "b0" / f"0.{content}")
    result = run("recover", src, "-o", tmp_path / "out", "--model", "tiny-random", "--steps", "2", "-q")
    assert_one_line_error(result, 2, "b0")
    assert ("is empty" if content == "empty" else f".{content}") in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


# Before: train-prior/evaluate said the folder lacked Fashion-MNIST's IDX files.
def test_data_of_empty_class_folders_is_named_as_such(tmp_path):
    for c in ("shirts", "shoes"):
        (tmp_path / "data" / c).mkdir(parents=True)
    result = run("train-prior", "--data", tmp_path / "data", "-o", tmp_path / "prior", "--dit-steps", "1", "--vae-steps", "1")
    assert_one_line_error(result, 2, "is empty")
    assert "idx" not in result.output.lower()


# Before: Pillow read 16-bit RGB PNGs at 8 bits and the recovered set came back at 8 bits.
def test_16_bit_rgb_pngs_are_read_and_written_at_16_bits(tmp_path):
    src = tmp_path / "set"
    for k, c in enumerate(("a", "b")):
        (src / c).mkdir(parents=True)
        (src / c / "0.png").write_bytes(png16.encode(rgb16(k)))
    dset = read_set(src)
    assert dset.extra["depths"] == [48, 48]
    assert np.allclose(dset.images[0].transpose(1, 2, 0) * 65535, rgb16(0), atol=0.5)   # every bit kept
    report = recover(src, tmp_path / "out")
    back = png16.read(tmp_path / "out" / "set" / "a" / "0.png")
    assert back.dtype == np.uint16 and back.shape == (16, 16, 3) and report["input"]["layout"] == "folder"
    assert len(np.unique(back % 256)) > 16                 # the low byte carries information, not zeros


def _average_filtered_png(samples: np.ndarray) -> bytes:
    """A 16-bit RGB PNG whose rows use filter 3 (average), which Pillow's writer never picks: written here from
    the specification, byte by byte."""
    h, w, _ = samples.shape
    raw, prev = bytearray(), bytes(w * 6)
    for y in range(h):
        line = samples[y].astype(">u2").tobytes()
        out = bytearray([3])
        for x, byte in enumerate(line):
            left = line[x - 6] if x >= 6 else 0
            out.append((byte - (left + prev[x]) // 2) & 0xFF)
        raw += out
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return png16.SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


def test_the_16_bit_codec_undoes_every_row_filter(tmp_path):
    samples = rgb16(3, size=9)
    (tmp_path / "avg.png").write_bytes(_average_filtered_png(samples))
    assert (png16.read(tmp_path / "avg.png") == samples).all()
    y, x = np.mgrid[0:40, 0:37]                        # Pillow picks sub, up and Paeth for a smooth grey image
    grey = ((np.sin(x / 5) + np.cos(y / 7) + 2) * 16000).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey.png", optimize=True)
    assert (png16.read(tmp_path / "grey.png")[..., 0] == grey).all()
    (tmp_path / "cut.png").write_bytes(png16.encode(samples)[:-30])
    with pytest.raises(png16.PngError):
        png16.read(tmp_path / "cut.png")


def mtt_set(tmp_path):
    import torch

    (tmp_path / "mtt").mkdir()
    torch.save(torch.from_numpy(make_images(4, 8)), tmp_path / "mtt" / "images_best.pt")
    torch.save(torch.arange(4) % 2, tmp_path / "mtt" / "labels_best.pt")
    return tmp_path / "mtt"


# Before: a NaN in the mean gave a NaN set, refused as "the set holds non-finite values"; a singular transform
# ended in numpy's LinAlgError traceback.
@pytest.mark.parametrize("damage, needle", [("nan-mean", "mean has 1 non-finite"),
                                            ("singular", "singular"), ("nearly-singular", "singular")])
def test_a_broken_whitening_is_named_not_the_set(tmp_path, damage, needle):
    src, d = mtt_set(tmp_path), 3 * 8 * 8
    mean, transform = np.zeros(d), np.eye(d)
    if damage == "nan-mean":
        mean[5] = np.nan
    elif damage == "singular":
        transform[7] = 0
    else:
        transform[7] = transform[8] * (1 + 1e-15)
    np.savez(tmp_path / "zca.npz", mean=mean, transform=transform)
    with pytest.raises(InputError, match=needle):
        read_set(src, pixel_space="zca", zca=tmp_path / "zca.npz")
    result = run("recover", src, "-o", tmp_path / "out", "--pixel-space", "zca", "--zca", tmp_path / "zca.npz",
                 "--model", "tiny-random", "--steps", "2", "-q")
    assert_one_line_error(result, 2, "whitening")
    assert not (tmp_path / "out").exists()


# Before: ONNX Runtime's own "Invalid input name" traceback at the first batch.
def test_another_graph_saved_as_dit_onnx_is_refused_before_it_runs(tmp_path, dm_file, tiny_onnx_dir):
    import shutil

    folder = tmp_path / "graphs"
    shutil.copytree(tiny_onnx_dir, folder)
    shutil.copy(folder / "vae_decoder.onnx", folder / "dit.onnx")
    result = run("recover", dm_file, "-o", tmp_path / "out", "--onnx", folder, "--steps", "2", "-q", "--no-png")
    assert_one_line_error(result, 2, "dit.onnx is not the graph the manifest lists")
    assert "re-run diver-lite export" in result.output and not (tmp_path / "out" / "dm_set.pt").exists()
    # Before: --onnx without --backend onnxruntime was ignored and the embedded prior ran instead, exit 0.
    ignored = run("recover", dm_file, "-o", tmp_path / "out2", "--onnx", folder, "--backend", "torch", "-q")
    assert_one_line_error(ignored, 2, "onnx_dir is read by the onnxruntime backend")


# Before: AttributeError deep inside export / profile, after the output folder was made.
def test_the_python_api_of_export_and_profile_refuses_wrong_things_before_writing(tmp_path):
    from diver_lite.core.config import RecoverConfig
    from diver_lite.export.onnx import export_models
    from diver_lite.profiling.profile import parse_plan, profile

    with pytest.raises(ExportError, match="NoneType, not DiverModels"):
        export_models(None, tmp_path / "e")
    images, labels = make_images(2, 8), np.array([0, 1])
    for args, needle in (((list, labels, "imagenet"), "images is a type"),
                         ((images, labels.astype(float), "imagenet"), "do not pair up"),
                         ((images, labels, "bogus"), "unknown pixel space")):
        with pytest.raises(ConfigError, match=needle):
            profile(*args, tmp_path / "p", [parse_plan("bf16")], RecoverConfig())
    with pytest.raises(ConfigError, match="not plans"):
        profile(images, labels, "imagenet", tmp_path / "p", ["bf16"], RecoverConfig())
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()
    assert issubclass(ModelError, Exception) and json.dumps(parse_plan("ort-int8").to_dict())
