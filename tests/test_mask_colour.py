"""Claims about deciding propagated mask pixels by frame 0's colours (innout.fit.mask_colour)."""

from __future__ import annotations

import numpy as np
import pytest

from innout.fit.mask_colour import BINS, UNIFORM, colour_density, colour_index, drop_specks, refine_by_colour
from innout.fit.masks import MaskError

RED, GREEN, GREY, BLUE = (200, 20, 20), (20, 200, 20), (128, 128, 128), (20, 20, 200)


def _frame(size: int = 32, fill=GREY) -> np.ndarray:
    return np.broadcast_to(np.array(fill, np.uint8), (size, size, 3)).copy()


def test_colour_index_is_the_flat_bin_of_each_channel():
    assert colour_index(np.array([255, 0, 16], np.uint8)) == (15 * 16 + 0) * 16 + 1
    assert colour_index(np.array([[0, 0, 0], [15, 15, 15]], np.uint8)).tolist() == [0, 0]


def test_one_colour_spreads_over_its_27_neighbouring_bins_plus_the_uniform_share():
    density = colour_density(np.array([RED] * 5, np.uint8))
    count = BINS**3
    assert density.sum() == pytest.approx(1.0)
    red = colour_index(np.array(RED, np.uint8))
    neighbour = colour_index(np.array([RED[0] + 16, RED[1] - 16, RED[2]], np.uint8))
    far = colour_index(np.array(BLUE, np.uint8))
    assert density[red] == pytest.approx((1 - UNIFORM) / 27 + UNIFORM / count)
    assert density[neighbour] == pytest.approx((1 - UNIFORM) / 27 + UNIFORM / count)
    assert density[far] == pytest.approx(UNIFORM / count)


def test_a_pixel_joins_the_object_exactly_when_the_posterior_odds_pass_one():
    """Frame 0: a red square (the object) and, off it, 20 green pixels among grey; frame 1: a green 4x4 patch
    far from the warped mask (prior = the floor there). Green is likelier on the object by the ratio R of the two
    colour densities, so it joins iff floor / (1 - floor) * R > 1."""
    first_frame = _frame()
    first = np.zeros((32, 32), bool)
    first[4:12, 4:12] = True
    first_frame[first] = RED
    first_frame[20, 10:30] = GREEN
    second = _frame()
    second[24:28, 24:28] = GREEN
    crops = np.stack([first_frame, second])
    warped = np.stack([first, first])
    green = colour_index(np.array(GREEN, np.uint8))
    ratio = colour_density(first_frame[first])[green] / colour_density(first_frame[~first])[green]
    assert ratio < 1  # green is a background colour here
    first_frame[first] = GREEN  # now the object is all green, the background holds 20 green pixels of 960
    ratio = colour_density(first_frame[first])[green] / colour_density(first_frame[~first])[green]
    threshold = 1 / (1 + ratio)  # floor / (1 - floor) * ratio = 1
    crops = np.stack([first_frame, second])
    joined = refine_by_colour(crops, first, warped, floor=threshold * 1.02, blur=0)
    left_out = refine_by_colour(crops, first, warped, floor=threshold * 0.98, blur=0)
    assert joined[1, 24:28, 24:28].all() and not left_out[1, 24:28, 24:28].any()


def test_the_warp_decides_colours_frame_0_never_showed_and_colour_overrules_a_wrong_warp():
    """Frame 1's warped mask sits on grey (a background colour) and holds a blue patch (never seen); the red
    object moved away from the warp: the red is found, the grey dropped, the unseen blue kept inside the warp only."""
    first_frame = _frame()
    first = np.zeros((32, 32), bool)
    first[2:10, 2:10] = True
    first_frame[first] = RED
    second = _frame()
    second[20:28, 20:28] = RED  # the object, far from the warp
    second[4:8, 4:8] = BLUE  # inside the warp
    second[4:8, 20:24] = BLUE  # outside it
    warped = np.zeros((2, 32, 32), bool)
    warped[0] = first
    warped[1, 2:10, 2:10] = True
    out = refine_by_colour(np.stack([first_frame, second]), first, warped, blur=0)
    assert (out[0] == first).all()
    expected = np.zeros((32, 32), bool)
    expected[20:28, 20:28] = True
    expected[4:8, 4:8] = True
    assert (out[1] == expected).all()


def test_specks_smaller_than_the_least_part_are_dropped():
    mask = np.zeros((10, 10), bool)
    mask[1, 1] = True  # 1 pixel
    mask[5:7, 5:7] = True  # 4 pixels
    assert drop_specks(mask, 4).sum() == 4 and not drop_specks(mask, 4)[1, 1]
    first_frame = _frame()
    first = np.zeros((32, 32), bool)
    first[4:12, 4:12] = True
    first_frame[first] = RED
    second = first_frame.copy()
    second[30, 30] = RED  # a lone red pixel far away
    out = refine_by_colour(np.stack([first_frame, second]), first, np.stack([first, first]), blur=0)
    assert (out[1] == first).all()


def test_bad_inputs_are_refused_and_an_empty_first_mask_leaves_the_warp():
    crops = np.zeros((2, 8, 8, 3), np.uint8)
    masks = np.zeros((2, 8, 8), bool)
    masks[1, 2:4, 2:4] = True
    with pytest.raises(MaskError, match="uint8 RGB"):
        refine_by_colour(crops.astype(np.float32), masks[0], masks)
    with pytest.raises(MaskError, match="do not match"):
        refine_by_colour(crops, masks[0, :4], masks)
    with pytest.raises(MaskError, match="floor"):
        refine_by_colour(crops, masks[1], masks, floor=0.5)
    assert (refine_by_colour(crops, masks[0], masks) == masks).all()
