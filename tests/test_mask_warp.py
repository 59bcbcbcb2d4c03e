"""Claims about the prior's mean face (w_avg) and the geometric propagation of a first-frame mask."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from innout.fit.mask_warp import (
    PROPAGATIONS,
    frame0_coordinates,
    mask_propagator,
    mean_face_depth,
    propagate_mask_by_geometry,
)
from innout.fit.masks import MaskError, propagate_mask, resolve_masks


@pytest.fixture(scope="module")
def world_prior():
    from innout.eg3d.checkpoint import load_generator
    from innout.world.prior import ASSET

    return load_generator(ASSET, "cpu")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_estimate_w_avg_is_the_mean_of_the_mapped_latents(tiny_generator):
    from innout.world.prior import estimate_w_avg

    G = copy.deepcopy(tiny_generator)
    G.backbone.mapping.w_avg.zero_()
    got = estimate_w_avg(G, samples=3000, seed=5)
    z = torch.randn(3000, G.backbone.mapping.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = G.mapping(z, torch.zeros(3000, G.backbone.mapping.c_dim))[:, 0].mean(0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert G.backbone.mapping.w_avg is got  # set in place: L_w, truncation and the mean face read it


def test_the_shipped_prior_has_its_mean_latent_and_its_mean_face_is_a_head(world_prior):
    """Its w_avg was zero (a w that draws almost nothing: mean opacity 0.02) before ``python -m innout.world
    w-avg``; now it is the mean of mapped latents (checked against an independent draw) and draws a head."""
    from innout.eg3d.cameras import frontal_label
    from innout.eg3d.weights_file import read_safetensors_metadata
    from innout.world.prior import ASSET

    mapping = world_prior.backbone.mapping
    z = torch.randn(8192, mapping.z_dim, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        independent = world_prior.mapping(z, torch.zeros(8192, mapping.c_dim))[:, 0].mean(0)
    assert float((mapping.w_avg - independent).norm() / independent.norm()) < 0.02
    assert "innout_w_avg" in read_safetensors_metadata(ASSET)
    _, opacity = mean_face_depth(world_prior, frontal_label(), 64)
    assert float((opacity > 0.5).float().mean()) > 0.2


def test_one_camera_repeated_keeps_the_mask_exactly(world_prior):
    from innout.eg3d.cameras import orbit_label

    cameras = orbit_label(1.4, 1.5).expand(3, -1)
    first = np.zeros((64, 64), bool)
    first[20:36, 24:44] = True
    coords, seen = frame0_coordinates(world_prior, cameras)
    grid = (torch.arange(64) + 0.5) / 64
    torch.testing.assert_close(coords[2, ..., 0], grid.expand(64, 64), rtol=0, atol=1e-5)
    torch.testing.assert_close(coords[2, ..., 1], grid[:, None].expand(64, 64), rtol=0, atol=1e-5)
    assert bool(seen.all())
    masks = propagate_mask_by_geometry(world_prior, cameras, first)
    assert masks.shape == (3, 64, 64)
    assert (masks == first).all()


@pytest.fixture(scope="module")
def world_clips(world_prior):
    """Eight frames (50 degrees of yaw) of every built-in object, with their true masks."""
    from innout.bench.world import BASE_HEAD
    from innout.world.clips import ClipPlan, render_clip
    from innout.world.figures import to_uint8
    from innout.world.objects import builtin_objects, load_object

    clips = {}
    for name in builtin_objects():
        clip = render_clip(ClipPlan(BASE_HEAD, frames=8), load_object(name), 64)
        crops = to_uint8(clip.composite)
        clips[name] = (crops, clip.object_mask[:, 0].numpy(), clip.cameras)
    return clips


def _mean_iou(masks: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([_iou(masks[t], truth[t]) for t in range(1, len(truth))]))


def test_geometry_follows_a_small_object_that_flow_loses(world_prior, world_clips):
    """The clown nose after 50 degrees of yaw: flow between frames loses it (IoU 0.115 measured), the
    mean face's geometry keeps a part (0.282)."""
    crops, truth, cameras = world_clips["clown_nose"]
    flow = _mean_iou(propagate_mask(crops, truth[0]), truth)
    geometry = _mean_iou(mask_propagator("geometry", world_prior, cameras)(crops, truth[0]), truth)
    assert geometry > flow + 0.1, (geometry, flow)


def test_the_union_is_no_worse_than_flow_on_any_builtin_object(world_prior, world_clips):
    """'both' (the union) against flow alone, mean IoU over frames 1-7 (measured: clown nose .258 / .115,
    face paint .803 / .767, card .207 / .189, sunglasses .614 / .492, surgical mask .887 / .887)."""
    for name, (crops, truth, cameras) in world_clips.items():
        flow = _mean_iou(propagate_mask(crops, truth[0]), truth)
        both = _mean_iou(mask_propagator("both", world_prior, cameras)(crops, truth[0]), truth)
        assert both >= flow - 0.005, (name, both, flow)


def test_the_default_decides_by_colour_and_beats_the_union_on_every_builtin_object(world_prior, world_clips):
    """'colour' (the union as the prior, frame 0's colours decide) against 'both', mean IoU over frames 1-7
    (measured: clown nose .986 / .258, face paint .907 / .803, card .993 / .207, sunglasses .835 / .614, surgical
    mask .995 / .887). The world's flat-coloured objects are the colour model's best case."""
    assert PROPAGATIONS[0] == "colour"
    for name, (crops, truth, cameras) in world_clips.items():
        both = _mean_iou(mask_propagator("both", world_prior, cameras)(crops, truth[0]), truth)
        colour = _mean_iou(mask_propagator("colour", world_prior, cameras)(crops, truth[0]), truth)
        assert colour > both and colour > 0.8, (name, colour, both)


def test_geometry_only_for_the_frames_a_fit_keeps(world_prior, world_clips):
    """The mean face is rendered per frame (about a second each with EG3D on a CPU), so a fit asks only for the
    frames it keeps: those equal the full computation, the others are left to the flow ('both') or empty."""
    crops, truth, cameras = world_clips["sunglasses"]
    full = propagate_mask_by_geometry(world_prior, cameras, truth[0], crops, refine=True)
    some = propagate_mask_by_geometry(world_prior, cameras, truth[0], crops, refine=True, frames=[5, 3, 0])
    assert (some[[0, 3, 5]] == full[[0, 3, 5]]).all() and full[[3, 5]].any()
    assert not some[[1, 2, 4, 6, 7]].any()
    both = mask_propagator("both", world_prior, cameras, frames=[3])(crops, truth[0])
    flow = propagate_mask(crops, truth[0])
    assert (both[5] == flow[5]).all() and (both[3] == (full[3] | flow[3])).all()
    with pytest.raises(MaskError, match="not all among"):
        propagate_mask_by_geometry(world_prior, cameras, truth[0], frames=[8])


def test_propagation_choices_are_checked():
    with pytest.raises(MaskError, match="unknown mask propagation"):
        mask_propagator("optical")
    with pytest.raises(MaskError, match="needs the generator"):
        mask_propagator("both")
    assert mask_propagator("flow") is propagate_mask


def test_resolve_masks_uses_the_given_propagator_for_a_first_frame_mask():
    crops = np.zeros((3, 8, 8, 3), np.uint8)
    first = np.zeros((8, 8), np.uint8)
    first[2:4, 2:4] = 255
    calls = []

    def marker(c, f):
        calls.append((c.shape, f.dtype))
        return np.stack([f] * len(c))

    out = resolve_masks(first, crops, marker)
    assert calls == [((3, 8, 8, 3), np.dtype(bool))]
    assert out.shape == (3, 8, 8) and out[:, 2:4, 2:4].all() and out.sum() == 12
    with pytest.raises(MaskError, match="must match the crops"):
        resolve_masks(np.ones((4, 4)), crops, marker)


def test_fit_refuses_an_unknown_propagation_before_any_work(tmp_path, tiny_generator):
    from innout.fit import get_preset
    from innout.fit.run import fit_video

    with pytest.raises(MaskError, match="unknown mask propagation"):
        fit_video(tmp_path / "missing.mp4", tiny_generator, get_preset("preview"), mask=np.ones((4, 4)),
                  mask_propagation="optical", workdir=tmp_path)  # fmt: skip


def test_the_command_line_offers_exactly_the_propagations_with_the_same_default():
    from innout.cli.pipeline import MASK_PROPAGATIONS

    assert MASK_PROPAGATIONS == PROPAGATIONS
