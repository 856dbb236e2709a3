"""Class maps, pixel spaces and NCFM mosaics."""

import pytest
import torch

from diver_lite.classmap import IMAGENET_SUBSETS, parse_class_map_json, resolve_class_map
from diver_lite.errors import InputError
from diver_lite.prepare import from_unit, from_vae_output, merge_mosaic, split_mosaic, to_unit, to_vae_input


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
    u = torch.rand(2, 3, 8, 8)
    x = from_unit(u, space)
    v = to_vae_input(x, space, "auto")
    assert v.min() >= -1 and v.max() <= 1
    torch.testing.assert_close(from_vae_output(v, space, "auto", 3), x)
    torch.testing.assert_close(to_unit(x, space), u)


def test_raw_range_feeds_stored_values_and_grey_is_replicated():
    x = torch.randn(2, 1, 8, 8)
    v = to_vae_input(x, "imagenet", "raw")
    assert v.shape == (2, 3, 8, 8) and torch.equal(v[:, 0], x[:, 0]) and torch.equal(v[:, 2], x[:, 0])
    torch.testing.assert_close(from_vae_output(v, "imagenet", "raw", 1), x)


def test_ncfm_quadrants_are_tl_tr_bl_br_and_merge_inverts():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).reshape(2, 3, 4, 4)
    q = split_mosaic(x)
    assert q.shape == (8, 3, 2, 2)
    assert torch.equal(q[0], x[0, :, :2, :2]) and torch.equal(q[1], x[0, :, :2, 2:])
    assert torch.equal(q[2], x[0, :, 2:, :2]) and torch.equal(q[3], x[0, :, 2:, 2:])
    assert torch.equal(q[4], x[1, :, :2, :2])
    assert torch.equal(merge_mosaic(q), x)
