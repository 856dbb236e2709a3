"""Class maps, pixel spaces, resizing and NCFM mosaics."""

import numpy as np
import pytest
import torch

from diver_lite.core.classmap import IMAGENET_SUBSETS, parse_class_map_json, resolve_class_map
from diver_lite.errors import InputError
from diver_lite.core.prepare import (from_unit, from_vae_output, merge_mosaic, resize, split_mosaic, to_unit,
                                to_vae_input)


def test_builtin_subsets_map_local_labels_in_order():
    assert resolve_class_map("imagenette", None, 10, 1000) == IMAGENET_SUBSETS["imagenette"]
    assert resolve_class_map("ImageWoof", None, 3, 1000) == (193, 182, 258)
    assert resolve_class_map(None, None, 4, 10) == (0, 1, 2, 3)  # identity by default


def test_user_json_map_as_list_or_object():
    assert parse_class_map_json("[5, 7]") == (5, 7)
    assert parse_class_map_json('{"1": 7, "0": 5}') == (5, 7)
    assert resolve_class_map(None, (5, 7), 2, 1000) == (5, 7)


@pytest.mark.parametrize("args, message", [
    (("imagenet-42", None, 10, 1000), "unknown subset"),
    (("imagenette", None, 11, 1000), "covers 10 labels"),
    (("imagenette", None, 10, 10), "outside the model's 10 classes"),
    (("imagenette", (1, 2), 2, 1000), "only one"),
])
def test_class_map_errors_say_what_to_do(args, message):
    with pytest.raises(InputError, match=message):
        resolve_class_map(*args)


@pytest.mark.parametrize("text", ["{", "[1.5]", '{"0": 1, "2": 3}', "[]"])
def test_bad_json_maps(text):
    with pytest.raises(InputError):
        parse_class_map_json(text)


@pytest.mark.parametrize("space", ["imagenet", "unit", "symmetric"])
def test_pixel_space_round_trip_through_the_vae_range(space):
    u = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    x = from_unit(u, space)
    v = to_vae_input(x, space, "auto")
    assert v.min() >= -1 and v.max() <= 1
    np.testing.assert_allclose(from_vae_output(v, space, "auto", 3), x, atol=1e-6)
    np.testing.assert_allclose(to_unit(x, space), u, atol=1e-6)


def test_raw_range_feeds_stored_values_and_grey_is_replicated():
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    v = to_vae_input(x, "imagenet", "raw")
    assert v.shape == (2, 3, 8, 8) and np.array_equal(v[:, 0], x[:, 0]) and np.array_equal(v[:, 2], x[:, 0])
    np.testing.assert_allclose(from_vae_output(v, "imagenet", "raw", 1), x, atol=1e-6)


@pytest.mark.parametrize("n_in, n_out, antialias", [(32, 256, False), (64, 256, False), (512, 256, False),
                                                    (256, 32, True), (256, 128, True), (256, 28, True)])
def test_numpy_resize_matches_torch_interpolate(n_in, n_out, antialias):
    x = np.random.default_rng(0).standard_normal((2, 3, n_in, n_in)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=(n_out, n_out), mode="bilinear",
                                          align_corners=False, antialias=antialias).numpy()
    np.testing.assert_allclose(resize(x, n_out, antialias), ref, atol=2e-6)


def test_ncfm_quadrants_are_tl_tr_bl_br_and_merge_inverts():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    q = split_mosaic(x)
    assert q.shape == (8, 3, 2, 2)
    assert np.array_equal(q[0], x[0, :, :2, :2]) and np.array_equal(q[1], x[0, :, :2, 2:])
    assert np.array_equal(q[2], x[0, :, 2:, :2]) and np.array_equal(q[3], x[0, :, 2:, 2:])
    assert np.array_equal(q[4], x[1, :, :2, :2])
    assert np.array_equal(merge_mosaic(q), x)
