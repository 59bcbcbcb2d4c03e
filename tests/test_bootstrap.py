"""The OOD field's head start (innout/fit/bootstrap.py): masks from the inversion's errors, and the regression
that puts the field where they say."""

from __future__ import annotations

import math

import pytest
import torch

from innout.eg3d.cameras import camera_rays, orbit_label
from innout.eg3d.config import GeneratorConfig
from innout.fit.bootstrap import (
    FirstGuess,
    blend_cross_entropy,
    bootstrap_ood,
    centroid_offsets,
    first_guess,
    otsu_threshold,
    residual_masks,
)
from innout.scene.ood_field import OODField


def test_otsu_threshold_splits_two_classes_at_the_lower_one():
    values = torch.tensor([0.1] * 50 + [0.9] * 30)
    threshold = otsu_threshold(values)
    # 256 bins over [0, 0.9]: 0.1 falls in bin 28, whose centre 28.5 * 0.9 / 256 is the threshold
    assert abs(threshold - 28.5 * 0.9 / 256) < 1e-6
    assert ((values > threshold) == (values > 0.5)).all()
    assert otsu_threshold(torch.zeros(10)) == 0.0


def test_residual_masks_mark_what_the_render_cannot_explain_and_nothing_when_all_is_explained():
    targets = torch.zeros(2, 3, 16, 16)
    renders = targets.clone() + 0.01 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    renders[0, :, 4:10, 5:11] = 1.0  # an error of 1/2 in [0, 1] units over a 6 x 6 square of frame 0
    masks = residual_masks(renders, targets, floor=0.05)
    square = torch.zeros_like(masks)
    square[0, :, 4:10, 5:11] = True
    grown = torch.nn.functional.max_pool2d(square.float(), 3, 1, 1).bool()
    assert masks.dtype == torch.bool and masks.shape == (2, 1, 16, 16)
    assert masks[0, 0, 5:9, 6:10].all()  # the square's inside
    assert not (masks & ~grown).any()  # nothing more than one pixel outside it
    assert not masks[1].any()
    assert not residual_masks(targets + 0.02, targets, floor=0.05).any()  # small errors everywhere: no object


def test_bootstrap_puts_an_opaque_shell_of_the_frame_colour_at_the_guessed_depth_on_masked_rays_only():
    """The shell-only variant (``blend_span="shell"``): b = 1 in the shell, 0 in front of it."""
    torch.manual_seed(0)
    rendering = GeneratorConfig.tiny().rendering
    cameras = torch.cat([orbit_label(1.5, 1.57), orbit_label(1.64, 1.57)])
    res = 16
    masks = torch.zeros(2, 1, res, res, dtype=torch.bool)
    masks[:, :, 6:9, 4:12] = True
    depth = 2.6
    targets = torch.zeros(2, 3, res, res)
    targets[:, 0] = 0.8  # reddish: [0.9, 0.5, 0.5] in [0, 1]
    guess = FirstGuess(masks, torch.full((2, 1, res, res), depth), targets)
    ood = OODField(2, resolution=32)
    history = bootstrap_ood(ood, guess, cameras, rendering, steps=300, lr=5e-3, rays_per_step=1024, seed=1,
                            blend_span="shell")  # fmt: skip
    assert len(history) == 300 and history[-1]["loss"] < history[0]["loss"] / 5
    origins, directions = camera_rays(cameras, res)
    inside, outside = 7 * res + 8, 2 * res + 2  # a masked ray and a ray far from the mask
    with torch.no_grad():
        for ray, on_object in ((inside, True), (outside, False)):
            depths = torch.tensor([2.3, depth])[None, :, None]  # in front of the surface, at it
            points = origins[:, ray : ray + 1] + depths * directions[:, ray : ray + 1]
            out = ood(points, torch.arange(2))
            b, sigma = out.blend.reshape(2, 2), out.sigma.reshape(2, 2)
            if on_object:
                assert (b[:, 1] > 0.8).all() and (b[:, 0] < 0.2).all()  # b = 1 at the surface, 0 in front
                assert (sigma[:, 1] > 8).all() and (sigma[:, 0] < 0).all()  # dense at the surface, empty before
                colour = out.rgb[:, :3].reshape(2, 2, 3)[:, 1]
                assert (colour - torch.tensor([0.9, 0.5, 0.5])).abs().max() < 0.1
            else:
                assert (b < 0.2).all()


def _a_band_at_one_depth():
    """One frontal frame (16^2) whose first guess is a band of rays at depth 2.6: (rendering, cameras, res, depth,
    guess)."""
    res, depth = 16, 2.6
    masks = torch.zeros(1, 1, res, res, dtype=torch.bool)
    masks[:, :, 6:9, 4:12] = True
    guess = FirstGuess(masks, torch.full((1, 1, res, res), depth), torch.zeros(1, 3, res, res))
    return GeneratorConfig.tiny().rendering, orbit_label(1.57, 1.57), res, depth, guess


def test_blend_in_front_fills_the_empty_space_before_the_shell_with_b_1_and_leaves_it_empty():
    torch.manual_seed(0)
    rendering, cameras, res, depth, guess = _a_band_at_one_depth()
    ood = OODField(1, resolution=32)
    bootstrap_ood(ood, guess, cameras, rendering, steps=300, lr=5e-3, rays_per_step=1024, seed=1,
                  balanced=True, blend_span="front")  # fmt: skip
    origins, directions = camera_rays(cameras, res)
    with torch.no_grad():
        for ray, on_object in ((7 * res + 8, True), (2 * res + 2, False)):
            depths = torch.tensor([2.35, depth])[None, :, None]  # in front of the shell, in it
            points = origins[:, ray : ray + 1] + depths * directions[:, ray : ray + 1]
            out = ood(points, torch.arange(1))
            b, sigma = out.blend.reshape(2), out.sigma.reshape(2)
            if on_object:
                assert (b > 0.8).all() and sigma[0] < 0 < 8 < sigma[1]  # b = 1 in front too; empty, then the shell
            else:
                assert (b < 0.2).all()


@pytest.mark.parametrize("span", ["shell", "front", "ray"])
def test_every_blend_span_trains_and_an_unknown_one_is_refused(span):
    guess = FirstGuess(torch.ones(1, 1, 4, 4, dtype=torch.bool), torch.full((1, 1, 4, 4), 2.7), torch.zeros(1, 3, 4, 4))
    rendering, camera = GeneratorConfig.tiny().rendering, orbit_label(1.57, 1.57)
    history = bootstrap_ood(OODField(1, resolution=8), guess, camera, rendering, steps=2, lr=1e-2, blend_span=span)
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["b"])) for h in history)
    with pytest.raises(ValueError, match="blend_span"):
        bootstrap_ood(OODField(1, resolution=8), guess, camera, rendering, steps=2, lr=1e-2, blend_span="everywhere")


def test_balanced_cross_entropy_averages_the_shell_and_the_rest():
    b = torch.tensor([0.5, 0.1, 0.2, 0.1])
    shell = torch.tensor([True, False, False, False])
    ln2, ln9, ln8 = 0.693147, 0.105361, 0.223144  # -ln 0.5, -ln 0.9, -ln 0.8
    assert float(blend_cross_entropy(b, shell, False)) == pytest.approx((ln2 + ln9 + ln8 + ln9) / 4, abs=1e-5)
    assert float(blend_cross_entropy(b, shell, True)) == pytest.approx(0.5 * (ln2 + (ln9 + ln8 + ln9) / 3), abs=1e-5)
    nothing = torch.zeros(4, dtype=torch.bool)  # no shell sample: the other class alone, halved
    plain = float(blend_cross_entropy(b, nothing, False))
    assert float(blend_cross_entropy(b, nothing, True)) == pytest.approx(0.5 * plain)


def test_no_steps_no_change():
    ood = OODField(1, resolution=8)
    before = {k: v.clone() for k, v in ood.state_dict().items()}
    guess = FirstGuess(torch.ones(1, 1, 4, 4, dtype=torch.bool), torch.full((1, 1, 4, 4), 2.7), torch.zeros(1, 3, 4, 4))
    assert bootstrap_ood(ood, guess, orbit_label(1.57, 1.57), GeneratorConfig.tiny().rendering, steps=0, lr=1e-2) == []
    assert all(torch.equal(before[k], v) for k, v in ood.state_dict().items())



def _random_start(G, frames: int = 2):
    from innout.fit.inversion import InversionResult

    cameras = torch.cat([orbit_label(1.5, 1.57), orbit_label(1.64, 1.57)])
    w = G.backbone.mapping(torch.randn(1, 512), cameras[:1]).detach()[:, :1]
    return InversionResult(w_cano=w, residuals=torch.randn(frames, 1, w.shape[-1]) * 0.1, residual_scale=0.7,
                           history=[])  # fmt: skip


def _tiny_joint_history(G, iterations: int, settings: dict, masks: torch.Tensor | None = None) -> list[dict]:
    return _tiny_joint(G, iterations, settings, masks)[0].history


def _tiny_joint(G, iterations: int, settings: dict, masks: torch.Tensor | None = None, start=None, guess_from=None):
    """The joint stage (and its start) on two 32^2 frames with a red band (``masks``: the user's, semi-supervised),
    started from ``start`` (default: a random W code), with the preview preset cut to ``iterations`` and changed by
    ``settings``."""
    from innout.fit.data import FitData
    from innout.fit.inversion import InversionResult
    from innout.fit.joint import joint_fit
    from innout.fit.presets import get_preset

    cameras = torch.cat([orbit_label(1.5, 1.57), orbit_label(1.64, 1.57)])
    targets = torch.zeros(2, 3, 32, 32)
    targets[:, 0, 10:20, 8:24] = 1.0  # a red band the random generator's render does not have
    data = FitData(targets, cameras, key=f"joint-history-{masks is not None}", ood_masks=masks)
    if start is None:
        w = G.backbone.mapping(torch.randn(1, 512), cameras[:1]).detach()[:, :1]
        start = InversionResult(w_cano=w, residuals=torch.zeros(2, 1, w.shape[-1]), residual_scale=0.7, history=[])
    cfg = get_preset("preview").joint
    short = {"iterations": iterations, "resolution": 32, "samples_per_ray": (6, 6), "ood_resolution": 16,
             "lambda_lpips": 0.0, "lambda_l2_sr": 0.0, "blend_warmup": 0.0, "blend_ramp": 0.0,
             "bootstrap_steps": 0}  # fmt: skip
    for key, value in {**short, **settings}.items():
        setattr(cfg, key, value)
    return joint_fit(G, data, start, cfg, guess_from=guess_from), start


def test_the_w_allowance_start_makes_l_w_count_only_the_distance_beyond_where_each_frame_began(tiny_generator):
    """``w_allowance`` 'start': L_w is 0 at the first step (every frame is where it began) and costs only what the
    stage adds; 'none' (the official term) is each frame's whole distance from w_avg from the first step."""
    plain = {"cano_reinit": 0.0, "lambda_guide": 0.0}
    (official, start) = _tiny_joint(tiny_generator, 3, {**plain, "w_allowance": "none"})
    (allowed, _) = _tiny_joint(tiny_generator, 3, {**plain, "w_allowance": "start"}, start=start)
    w_avg = tiny_generator.backbone.mapping.w_avg.reshape(1, 1, -1)
    began = (start.codes(tiny_generator.num_ws).all_ws().detach() - w_avg).flatten(1).norm(dim=1)
    # one frame a step, not yet moved at step 0
    assert any(official.history[0]["w"] == pytest.approx(float(d), rel=1e-5) for d in began)
    assert allowed.history[0]["w"] == 0
    assert all(row["w"] >= 0 for row in allowed.history)


def test_the_area_allowance_is_the_masks_coverage_or_the_first_guess_coverage(tiny_generator):
    """``area_allowance``: with masks, 'masks' and 'guess' count only the coverage beyond the masks': masks over every
    pixel allow everything, so the term is exactly 0 at every step, while 'none' counts it. Without masks, 'masks' is
    the official term (the same steps as 'none'), and 'guess' counts only the coverage beyond the first guess's."""
    everywhere = torch.ones(2, 1, 32, 32)
    for allowance in ("masks", "guess"):
        allowed = _tiny_joint_history(tiny_generator, 3, {"area_allowance": allowance}, masks=everywhere)
        assert [row["area"] for row in allowed] == [0.0, 0.0, 0.0], allowance
    counted = _tiny_joint_history(tiny_generator, 3, {"area_allowance": "none"}, masks=everywhere)
    assert all(row["area"] > 0 for row in counted)
    plain = {"lambda_guide": 0.0, "bootstrap_steps": 20}  # a head start: the field covers the band from step 0
    (none, start) = _tiny_joint(tiny_generator, 3, {**plain, "area_allowance": "none"})
    (masks, _) = _tiny_joint(tiny_generator, 3, {**plain, "area_allowance": "masks"}, start=start)
    (guess, _) = _tiny_joint(tiny_generator, 3, {**plain, "area_allowance": "guess"}, start=start)
    assert [row["area"] for row in masks.history] == [row["area"] for row in none.history]
    assert none.history[0]["area"] > 0 and guess.history[0]["area"] < none.history[0]["area"]


def test_the_first_guess_guide_weighs_the_ood_only_l2_falling_linearly_to_zero(tiny_generator):
    """Unsupervised joint stage with ``lambda_guide`` 2 and ``lambda_guide_blend`` 0.5 fading over half of 4 steps:
    the guide term (the OOD-only render's L2 inside the first guess's masks) weighs 2, then 1, then is gone, the
    blend guide (cross-entropy of each ray's largest b against those masks) 0.5, then 0.25; the loss is exactly
    the weighted sum of the terms the history records."""
    history = _tiny_joint_history(tiny_generator, 4, {"lambda_guide": 2.0, "lambda_guide_blend": 0.5,
                                                      "guide_fade": 0.5})  # fmt: skip
    weights = {"l2": 1.0, "entropy": 1.0, "area": 1.0, "delta": 2e-3, "w": 1.0}
    for step, guide_weight in enumerate([2.0, 1.0, None, None]):
        row = history[step]
        assert ("guide" in row) == ("guide_blend" in row) == (guide_weight is not None), row
        total = sum(weight * row[name] for name, weight in weights.items())
        if guide_weight is not None:
            total += guide_weight * row["guide"] + guide_weight / 4 * row["guide_blend"]
        assert row["loss"] == pytest.approx(total, rel=1e-5), row
    assert history[0]["guide"] > 0  # the band is in the first guess and the untrained OOD field is not red there


def test_a_semi_supervised_fit_adds_the_mask_blend_term_and_no_guide(tiny_generator):
    """With the user's masks the guides are off (the masks' own terms stand in) and ``lambda_mask_blend`` weighs the
    cross-entropy of each ray's largest b against them at every step."""
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 10:20, 8:24] = 1.0
    history = _tiny_joint_history(tiny_generator, 3, {"lambda_guide": 2.0, "lambda_guide_blend": 2.0,
                                                      "lambda_mask_blend": 0.5}, masks)  # fmt: skip
    weights = {"l2": 1.0, "entropy": 1.0, "area": 1.0, "delta": 2e-3, "w": 1.0, "l2_ood": 1.0, "sparsity": 3.0,
               "mask_blend": 0.5}  # fmt: skip
    for row in history:
        assert "guide" not in row and "guide_blend" not in row and row["mask_blend"] > 0, row
        assert row["loss"] == pytest.approx(sum(w * row[name] for name, w in weights.items()), rel=1e-5), row


def _band_masks() -> torch.Tensor:
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 10:20, 8:24] = 1.0
    return masks


def test_only_a_fit_without_masks_starts_from_the_reinitialised_canonical_code(tiny_generator):
    """The official mask-free script starts the joint stage from 0.7 w_cano + 0.3 N(0, 1) (seeded); the official
    mask-supervised one from the inversion: a fit with the user's masks keeps its masked inversion's code."""
    start = _random_start(tiny_generator)
    free, _ = _tiny_joint(tiny_generator, 0, {}, start=start)
    supervised, _ = _tiny_joint(tiny_generator, 0, {}, _band_masks(), start=start)
    noise = torch.randn(start.w_cano.shape, generator=torch.Generator().manual_seed(0 + 7919))
    torch.testing.assert_close(free.codes.w_cano, 0.7 * start.w_cano + 0.3 * noise)
    assert torch.equal(supervised.codes.w_cano, start.w_cano)
    assert torch.equal(supervised.codes.residuals, start.residuals)


def test_the_first_guess_is_made_from_the_guess_inversion_only_without_masks(tiny_generator, monkeypatch):
    """``guess_from`` (``joint.guess_space`` 'w': a W inversion of its own) makes the unsupervised first guess; with
    the user's masks the guess is the masks, and the depths come from the inversion the stage starts from."""
    import innout.fit.joint as joint

    given = []

    def spy(G, data, codes, settings, floor):
        given.append(codes.all_ws().detach().clone())
        return first_guess(G, data, codes, settings, floor)

    monkeypatch.setattr(joint, "first_guess", spy)
    start, other = _random_start(tiny_generator), _random_start(tiny_generator)
    num_ws = tiny_generator.num_ws
    _tiny_joint(tiny_generator, 1, {"lambda_guide": 1.0}, start=start, guess_from=other)
    assert torch.equal(given[-1], other.codes(num_ws).all_ws().detach())
    _tiny_joint(tiny_generator, 1, {"lambda_guide": 1.0, "bootstrap_steps": 1}, _band_masks(), start=start,
                guess_from=other)  # fmt: skip
    assert torch.equal(given[-1], start.codes(num_ws).all_ws().detach())
    _tiny_joint(tiny_generator, 1, {"lambda_guide": 1.0}, start=start)
    assert torch.equal(given[-1], start.codes(num_ws).all_ws().detach())


def test_a_first_guess_from_w_is_a_stage_of_its_own_only_where_a_guess_is_made():
    from innout.fit import get_preset, planned_stages

    cfg = get_preset("preview")
    cfg.joint.guess_space = "w"
    assert planned_stages(cfg) == ["init", "invert", "invert-w", "ood head start", "joint"]
    assert planned_stages(cfg, semi_supervised=True) == ["init", "invert", "ood head start", "joint"]
    cfg.joint.bootstrap_steps, cfg.joint.lambda_guide = 0, 0.0
    assert planned_stages(cfg) == ["init", "invert", "joint"]
    cfg.joint.guess_space = "w+"
    cfg.joint.bootstrap_steps = 10
    assert planned_stages(cfg) == ["init", "invert", "ood head start", "joint"]


def test_the_blend_terms_are_off_in_the_warm_up_then_rise_linearly_over_the_ramp():
    from innout.fit.config import JointConfig
    from innout.fit.joint import blend_schedule

    cfg = JointConfig(iterations=10, blend_warmup=0.5, blend_ramp=0.2)
    assert [blend_schedule(i, cfg) for i in range(10)] == [0, 0, 0, 0, 0, 0.0, 0.5, 1.0, 1.0, 1.0]
    cfg.blend_ramp = 0.0  # at full weight at once after the warm-up
    assert [blend_schedule(i, cfg) for i in range(10)] == [0, 0, 0, 0, 0, 1.0, 1.0, 1.0, 1.0, 1.0]
    cfg.blend_warmup = 0.0  # the official schedule: on from the start
    assert blend_schedule(0, cfg) == 1.0


def test_the_joint_loss_weighs_the_blend_terms_by_that_schedule(tiny_generator):
    """4 steps, warm-up 0.25 and ramp 0.5: the entropy and area terms weigh 0, 0, 0.5, 1 in the recorded loss."""
    history = _tiny_joint_history(tiny_generator, 4, {"blend_warmup": 0.25, "blend_ramp": 0.5, "lambda_guide": 0.0})
    for row, share in zip(history, [0.0, 0.0, 0.5, 1.0], strict=True):
        total = row["l2"] + share * (row["entropy"] + row["area"]) + 2e-3 * row["delta"] + row["w"]
        assert row["loss"] == pytest.approx(total, rel=1e-5), (share, row)


def test_the_area_term_limited_to_the_planes_leaves_the_decoder_and_codes_to_the_other_terms(tiny_generator):
    """``area_reach``: with every other term off, one step of the area term moves the OOD decoder and the frames'
    codes with 'all' (the official: through the shared decoder, everywhere at once) and leaves them exactly where
    they began with 'planes', which still moves the tri-plane."""
    from innout.fit.joint import make_ood_field
    from innout.fit.presets import get_preset

    only_area = {"lambda_l2": 0.0, "lambda_entropy": 0.0, "latent_lr": 0.0, "lambda_guide": 0.0, "cano_reinit": 0.0,
                 "ood_motion": "none"}  # fmt: skip
    cfg = get_preset("preview").joint
    cfg.ood_resolution, cfg.ood_motion = 16, "none"  # as _tiny_joint's
    began = make_ood_field(2, cfg, seed=0)  # the stage's start (its seed is 0)
    moved = {}
    for reach in ("all", "planes"):
        fitted, _ = _tiny_joint(tiny_generator, 1, {**only_area, "area_reach": reach})
        assert fitted.history[0]["area"] > 0
        moved[reach] = {name: not torch.equal(value, began.state_dict()[name])
                        for name, value in fitted.ood.state_dict().items()}  # fmt: skip
    assert all(moved["all"].values()), moved["all"]
    assert moved["planes"] == {name: name == "triplanes" for name in moved["planes"]}, moved["planes"]


def test_a_moving_field_is_the_shared_field_translated_by_each_frames_offset():
    """``OODField(motion=True)``: frame t's field at x is the field at x - d_t; without motion there is no offset
    tensor (scenes written before motion existed load as they are)."""
    torch.manual_seed(0)
    moving = OODField(2, resolution=8, code_dim=4, motion=True)
    still = OODField(2, resolution=8, code_dim=4)
    still.load_state_dict({k: v for k, v in moving.state_dict().items() if k != "offsets"})
    assert "offsets" not in still.state_dict() and not still.motion and moving.motion
    with torch.no_grad():
        moving.offsets.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.1, -0.05, 0.02]]))
    points = torch.rand(2, 5, 3) - 0.5
    frames = torch.tensor([0, 1])
    shifted = points - moving.offsets[:, None]
    got, want = moving(points, frames), still(shifted, frames)
    for name in ("rgb", "sigma", "blend"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=0, atol=0)


def test_centroid_offsets_are_each_frames_masked_surface_centroid_less_the_median_one():
    """Rays from two fixed origins; masked pixels at known depths: the offsets are exact. A frame without a
    masked pixel gets zero."""
    n, res = 3, 2
    origins = torch.zeros(n, res * res, 3)
    directions = torch.zeros(n, res * res, 3)
    directions[..., 2] = 1.0  # every ray looks along +z from the origin: the point is (0, 0, depth)
    masks = torch.zeros(n, 1, res, res, dtype=torch.bool)
    depths = torch.zeros(n, 1, res, res)
    masks[0, 0, 0, 0], depths[0, 0, 0, 0] = True, 1.0  # centroid z = 1
    masks[1, 0, 0, :], depths[1, 0, 0, :] = True, torch.tensor([2.0, 4.0])  # centroid z = 3
    guess = FirstGuess(masks, depths, torch.zeros(n, 3, res, res))
    offsets = centroid_offsets(guess, origins, directions)
    # the median of the seen centroids (z = 1 and 3) is torch's lower median, 1
    torch.testing.assert_close(offsets, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))


def test_with_motion_the_head_start_begins_at_the_centroid_offsets_and_the_joint_stage_trains_them(tiny_generator):
    result, _ = _tiny_joint(tiny_generator, 3, {"ood_motion": "translation", "bootstrap_steps": 2})
    assert result.ood.motion and result.ood.offsets.shape == (2, 3)
    assert float(result.ood.offsets.abs().max()) > 0
    plain, _ = _tiny_joint(tiny_generator, 3, {"ood_motion": "none", "bootstrap_steps": 2})
    assert not plain.ood.motion


def test_the_empty_span_everywhere_teaches_an_empty_density_off_the_shell_and_keeps_the_shell():
    """``empty_span="everywhere"``: besides the shell (dense) and the space in front of it (empty), the density is
    taught to be empty on the rays off the masks too, where 'front' leaves it as the noise made it."""
    torch.manual_seed(0)
    rendering, cameras, res, depth, guess = _a_band_at_one_depth()
    origins, directions = camera_rays(cameras, res)
    off = 2 * res + 2  # a ray far from the mask
    depths = torch.linspace(rendering.ray_start, rendering.ray_end, 12)[None, :, None]
    sigmas = {}
    for span in ("front", "everywhere"):
        torch.manual_seed(0)
        ood = OODField(1, resolution=32)
        bootstrap_ood(ood, guess, cameras, rendering, steps=150, lr=1e-2, rays_per_step=512, seed=1,
                      empty_span=span)  # fmt: skip
        with torch.no_grad():
            sigmas[span] = ood(origins[:, off : off + 1] + depths * directions[:, off : off + 1], torch.arange(1)).sigma
            shell = ood(origins[:, 7 * res + 8 : 7 * res + 9] + depth * directions[:, 7 * res + 8 : 7 * res + 9],
                        torch.arange(1)).sigma  # fmt: skip
        assert float(shell) > 8, span  # the object stays dense in both
    assert float(sigmas["everywhere"].max()) < 0 < float(sigmas["front"].max())
    with pytest.raises(ValueError, match="empty_span"):
        bootstrap_ood(OODField(1, resolution=8), guess, cameras, rendering, steps=1, lr=1e-2, empty_span="nowhere")


def _a_disc_on_a_wall(centres_x: list[float], object_depth: float | None = None, stand_off: float = 0.0):
    """Three orbit views (yaw -0.4, 0, +0.4 rad about frontal) of a wall z = 0.1 (the head) with a disc of radius
    0.15 at (x, 0, 0.1 + ``stand_off``) per frame, facing the cameras; far from the wall the rays see the background
    at depth 3.3. The guess's depths are the wall's (the inversion's surface), or ``object_depth`` on the disc's
    pixels (a card reaching past the face). Returns the guess, rays and cameras."""
    res = 32
    cams = orbit_label(torch.tensor([math.pi / 2 - 0.4, math.pi / 2, math.pi / 2 + 0.4]), math.pi / 2)
    origins, directions = camera_rays(cams, res)
    to_wall = (0.1 - origins[..., 2]) / directions[..., 2]
    hit = origins + to_wall[..., None] * directions
    on_head = hit[..., :2].abs().amax(-1) < 0.5
    depths = torch.where(on_head, to_wall, torch.full_like(to_wall, 3.3))
    to_disc = (0.1 + stand_off - origins[..., 2]) / directions[..., 2]
    on_disc = origins + to_disc[..., None] * directions
    disc = torch.stack([(on_disc[t, :, :2] - torch.tensor([x, 0.0])).norm(dim=-1) < 0.15
                        for t, x in enumerate(centres_x)])  # fmt: skip
    if object_depth is not None:
        depths = torch.where(disc, torch.full_like(depths, object_depth), depths)
    guess = FirstGuess(disc.reshape(3, 1, res, res), depths.reshape(3, 1, res, res), torch.zeros(3, 3, res, res))
    return guess, origins, directions, cams


def test_auto_motion_turns_on_for_an_object_that_moves_against_the_head_and_not_for_one_fixed_to_it():
    """``motion_ratio`` in the image plane: a disc fixed on the wall moves across the image as the view turns, but
    exactly as the wall carries it (ratio ~0); one that slides 0.3 a frame across the wall moves against it (its
    image radius is about 0.15, so 0.3 is about two radii). Depths of the background on the disc's pixels (a card
    past the face) neither hide the motion nor invent one."""
    from innout.fit.bootstrap import MOTION_RATIO, motion_ratio

    assert MOTION_RATIO == 1.5
    for object_depth in (None, 3.3):
        fixed = _a_disc_on_a_wall([0.0, 0.0, 0.0], object_depth)
        sliding = _a_disc_on_a_wall([-0.3, 0.0, 0.3], object_depth)
        assert motion_ratio(*fixed) < 0.3 < MOTION_RATIO, object_depth
        assert MOTION_RATIO < 1.7 < motion_ratio(*sliding) < 2.5, object_depth
    guess, origins, directions, cams = _a_disc_on_a_wall([0.0, 0.0, 0.0])
    nothing = FirstGuess(torch.zeros_like(guess.masks), guess.depths, guess.targets)
    assert motion_ratio(nothing, origins, directions, cams) == 0.0
    one_frame = FirstGuess(guess.masks * torch.tensor([0, 1, 0]).bool()[:, None, None, None], guess.depths,
                           guess.targets)  # fmt: skip
    assert motion_ratio(one_frame, origins, directions, cams) == 0.0


def test_the_views_agree_where_the_object_stands_off_the_inversions_surface():
    """``views_depth_choice``: a disc 0.08 in front of the wall, whose guessed depths are the wall's, is carried
    onto its masks in the other views when its pixels move about 0.08 towards the cameras (the side views see the
    wall at a slant, so a bit more along their rays), and that offset is taken; a disc on the wall needs no offset.
    ``at_depth_offset`` moves the masked pixels' depths only."""
    from innout.fit.bootstrap import DEPTH_MIN_GAIN, DEPTH_STEP, at_depth_offset, views_depth_choice

    standing = _a_disc_on_a_wall([0.0, 0.0, 0.0], stand_off=0.08)
    choice = views_depth_choice(*standing)
    assert -0.10 <= choice.offset <= -0.07 and choice.best == choice.offset and choice.gain >= DEPTH_MIN_GAIN
    assert abs(views_depth_choice(*_a_disc_on_a_wall([0.0, 0.0, 0.0])).offset) <= DEPTH_STEP
    guess = standing[0]
    moved = at_depth_offset(guess, -0.08)
    torch.testing.assert_close(moved.depths[guess.masks], guess.depths[guess.masks] - 0.08)
    assert torch.equal(moved.depths[~guess.masks], guess.depths[~guess.masks]) and moved.masks is guess.masks
    one_frame = FirstGuess(guess.masks * torch.tensor([0, 1, 0]).bool()[:, None, None, None], guess.depths,
                           guess.targets)  # fmt: skip
    assert views_depth_choice(one_frame, *standing[1:]) == (0.0, 0.0, 0.0)


def test_masked_pixels_that_see_the_background_take_the_objects_depth_on_the_head():
    """``background_onto_object``: halfway between the clip's nearest (2.4) and farthest (3.3) depth is 2.85; a
    masked pixel past it takes the median of its frame's masked pixels on the head (torch's median of an even count
    is the lower middle), or the clip's when its frame has none; unmasked pixels keep theirs."""
    from innout.fit.bootstrap import background_onto_object

    depths = torch.tensor([[2.5, 2.6, 3.3, 2.4], [3.3, 3.3, 3.3, 2.4], [2.7, 3.3, 2.4, 3.3]]).reshape(3, 1, 2, 2)
    masks = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0]]).bool().reshape(3, 1, 2, 2)
    moved = background_onto_object(FirstGuess(masks, depths, torch.zeros(3, 3, 2, 2))).depths.reshape(3, 4)
    want = torch.tensor([[2.5, 2.6, 2.5, 2.4], [2.6, 2.6, 3.3, 2.4], [2.7, 2.7, 2.4, 3.3]])
    torch.testing.assert_close(moved, want, rtol=0, atol=0)  # the clip's median of 2.5, 2.6, 2.7: 2.6
    on_head = FirstGuess(masks, torch.full_like(depths, 2.5), torch.zeros(3, 3, 2, 2))
    assert background_onto_object(on_head) is on_head


def test_auto_motion_keeps_the_translations_at_zero_for_an_object_that_does_not_move(tiny_generator):
    """The tiny clip's red band is fixed to the frame: with 'auto' the field has translations, they stay 0, and the
    fit is the one without motion, tensor for tensor."""
    result, start = _tiny_joint(tiny_generator, 3, {"ood_motion": "auto", "bootstrap_steps": 2})
    assert result.ood.motion and float(result.ood.offsets.abs().max()) == 0.0
    still, _ = _tiny_joint(tiny_generator, 3, {"ood_motion": "none", "bootstrap_steps": 2}, start=start)
    moving = {k: v for k, v in result.ood.state_dict().items() if k != "offsets"}
    assert moving.keys() == still.ood.state_dict().keys()
    for name, tensor in still.ood.state_dict().items():  # the same fit, exactly
        torch.testing.assert_close(moving[name], tensor, rtol=0, atol=0, msg=name)
