"""Composite rendering: b = 0 is EG3D, both fields see the same points, an opaque OOD object shows
through the blend map, gradients reach every parameter."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from innout.eg3d import frontal_label, orbit_label
from innout.eg3d.cameras import camera_rays
from innout.render import render_rays
from innout.scene import OODField, render_composite
from innout.world.band import band_field as synthetic_band


def band_field():
    """An opaque slab across the eyes, in front of the face, fully OOD (b = 1), wider than the benchmark's."""
    return synthetic_band(half_width=0.3)


def planes_and_camera(G, yaw=1.7, pitch=1.5):
    device = G.decoder.net[0].weight.device
    torch.manual_seed(3)
    with torch.no_grad():
        planes = G.synthesize_planes(G.mapping(torch.randn(1, 512).to(device), frontal_label().to(device)))
    return planes, orbit_label(yaw, pitch).to(device)


def test_zero_blend_is_exactly_eg3d(device_generator, device):
    G = device_generator
    planes, c = planes_and_camera(G)
    ood = OODField(4, resolution=32).to(device)
    frames = torch.tensor([2], device=device)
    with torch.no_grad():
        ref = G.render_planes(planes, c, deterministic=True)
        out = render_composite(G, planes, ood, frames, c, blend_scale=0.0, deterministic=True)
        pixel_map = torch.zeros(1, 1, 32, 32, device=device)
        out_map = render_composite(G, planes, ood, frames, c, blend_scale=pixel_map, deterministic=True)
    torch.testing.assert_close(out.feature_image, ref.feature_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth_image, ref.depth_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out_map.feature_image, ref.feature_image, atol=1e-6, rtol=0)
    assert out.ood_opacity.abs().max() == 0


OPTIONS = [{"density_noise": 0.5}, {"white_back": True}, {"density_noise": 0.5, "white_back": True}]


@pytest.mark.parametrize("option", OPTIONS)
def test_zero_blend_is_exactly_eg3d_with_every_rendering_option(tiny_generator, option):
    """The one marcher: density noise (random, so seeded) and a white background act the same in EG3D's
    render and in the composite, so b = 0 still gives EG3D's render."""
    import copy

    G = copy.deepcopy(tiny_generator)
    G.config = dataclasses.replace(G.config, rendering=dataclasses.replace(G.rendering, **option))
    planes, c = planes_and_camera(G)
    ood = OODField(2, resolution=32)
    with torch.no_grad():
        torch.manual_seed(11)
        ref = G.render_planes(planes, c)
        torch.manual_seed(11)
        out = render_composite(G, planes, ood, torch.tensor([1]), c, blend_scale=0.0)
        torch.manual_seed(11)
        plain = tiny_generator.render_planes(planes, c)
    torch.testing.assert_close(out.feature_image, ref.feature_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth_image, ref.depth_image, atol=1e-6, rtol=0)
    assert (plain.feature_image - ref.feature_image).abs().max() > 1e-3  # the option does change the render


def test_both_fields_are_evaluated_at_the_same_points(tiny_generator):
    G = tiny_generator
    planes, c = planes_and_camera(G)
    seen = {"face": [], "ood": []}
    face = G.face_field(planes)
    band = band_field()

    def record(name, field):
        def wrapped(points):
            seen[name].append(points.detach().clone())
            return field(points)

        return wrapped

    origins, dirs = camera_rays(c, 16)
    render_rays([record("face", face), record("ood", band)], origins, dirs, G.rendering, points_per_chunk=2000)
    assert len(seen["face"]) == len(seen["ood"]) > 2
    for a, b in zip(seen["face"], seen["ood"], strict=True):
        assert torch.equal(a, b)


def test_opaque_ood_object_shows_in_the_blend_map_and_removal_restores_the_face(tiny_generator):
    G = tiny_generator
    planes, c = planes_and_camera(G, yaw=1.5708, pitch=1.5708)
    origins, dirs = camera_rays(c, 32)
    fields = [G.face_field(planes), band_field()]
    with torch.no_grad():
        out = render_rays(fields, origins, dirs, G.rendering, deterministic=True, separate=True)
        removed = render_rays(fields, origins, dirs, G.rendering, deterministic=True, blend_scale=0.0)
        eg3d = G.render_planes(planes, c, resolution=32, deterministic=True)
    covered = out.ood_opacity[0, 0] > 0.95
    assert 0.05 < covered.float().mean() < 0.5  # a band, not the whole image
    rgb = out.feature_image[0, :3].permute(1, 2, 0)
    torch.testing.assert_close(
        rgb[covered], torch.tensor([1.0, -1.0, -1.0]).expand(int(covered.sum()), 3), atol=0.05, rtol=0
    )
    rows = covered.any(dim=1).nonzero().flatten()
    assert rows.min() > 2 and rows.max() < 29  # across the eyes, not at the image border
    torch.testing.assert_close(removed.feature_image, eg3d.feature_image, atol=1e-5, rtol=0)
    # the face rendered alone approximates EG3D only: its fine samples follow the composite weights (the band)
    torch.testing.assert_close(out.face_feature_image, eg3d.feature_image, atol=0.3, rtol=0)


def test_the_ood_field_alone_over_a_background_is_its_own_render_on_that_background(tiny_generator):
    """``separate``: the OOD-only image and its own opacity (``ood_alone_weight``) put it over any background
    (``over_background``, the joint stage's 'random' ``ood_background``): over white, that is the OOD field rendered
    alone by the marcher with ``white_back`` (coarse samples only, so both renders sample the same depths); on black,
    an empty ray shows black, which a dark object's pixels match without any density."""
    import dataclasses

    from innout.fit.losses import over_background

    G = tiny_generator
    planes, c = planes_and_camera(G, yaw=1.5708, pitch=1.5708)
    origins, dirs = camera_rays(c, 32)
    band = band_field()
    coarse_only = {"deterministic": True, "depth_resolution_importance": 0}
    with torch.no_grad():
        out = render_rays([G.face_field(planes), band], origins, dirs, G.rendering, separate=True, **coarse_only)
        white = dataclasses.replace(G.rendering, white_back=True)
        alone_on_white = render_rays([band], origins, dirs, white, **coarse_only)
    weight = out.ood_alone_weight
    assert weight.shape == (1, 1, 32, 32) and float(weight.min()) < 0.05 and float(weight.max()) > 0.95
    on_white = over_background(out.ood_feature_image, weight, torch.ones(1, out.ood_feature_image.shape[1], 1, 1))
    torch.testing.assert_close(on_white, alone_on_white.feature_image, atol=1e-5, rtol=0)
    empty = weight[0, 0] < 0.05
    torch.testing.assert_close(out.ood_feature_image[0, :3].permute(1, 2, 0)[empty],
                               torch.full((int(empty.sum()), 3), -1.0), atol=0.1, rtol=0)  # fmt: skip


def test_gradients_reach_the_ood_field_and_the_latents(device_generator, device):
    G = device_generator
    c = frontal_label().to(device)
    ws = G.mapping(torch.randn(1, 512, device=device), c).detach().requires_grad_(True)
    ood = OODField(3, resolution=32).to(device)
    planes = G.synthesize_planes(ws)
    out = render_composite(G, planes, ood, torch.tensor([1], device=device), c, resolution=16)
    loss = out.image_raw.square().mean() + out.blend.mean()
    loss.backward()
    assert ws.grad.abs().sum() > 0
    assert ood.triplanes.grad.abs().sum() > 0 and ood.decoder.net[0].weight.grad.abs().sum() > 0
    assert ood.codes.grad[1].abs().sum() > 0 and ood.codes.grad[0].abs().sum() == 0  # only frame 1's code


def test_seeded_composite_render_independent_of_chunking(device_generator, device):
    G = device_generator
    planes, c = planes_and_camera(G)
    origins, dirs = camera_rays(c, 12)
    ood = OODField(2, resolution=32).to(device)
    fields = [G.face_field(planes), ood.field(torch.tensor([0], device=device))]
    with torch.no_grad():
        torch.manual_seed(5)
        a = render_rays(fields, origins, dirs, G.rendering, points_per_chunk=1 << 20)
        torch.manual_seed(5)
        b = render_rays(fields, origins, dirs, G.rendering, points_per_chunk=500)
    for key in ("feature_image", "depth_image", "ood_opacity"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), atol=1e-5, rtol=1e-5)
