"""The scene: rendering with edits, cameras, removal, the tri-plane cache, temporal smoothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from innout.edit.directions import Direction, latent_space_digest
from innout.edit.smoothing import SuperresolutionHistory, causal_smooth, smooth, zero_lag_smooth
from innout.images import to_uint8
from innout.scene import RenderError, RenderRequest, Scene, SceneData, SceneSource, save_scene
from innout.world.band import band_ood_field, make_synthetic_video


def band_scene_data(G, n_frames: int = 3, transforms=None, source=None) -> SceneData:
    """A scene as a fit would leave it: known latents along a yaw sweep, the red band as the OOD field."""
    video = make_synthetic_video(G, n_frames)
    return SceneData(
        G,
        video.ws,
        video.cameras,
        band_ood_field(n_frames, resolution=64),
        source or SceneSource(list(range(n_frames)), transforms=transforms),
    )


@pytest.fixture(scope="module")
def band_scene(tiny_generator, tmp_path_factory, device) -> Scene:
    path = save_scene(band_scene_data(tiny_generator), tmp_path_factory.mktemp("scene") / "band.safetensors")
    return Scene.load(path, device)


def random_direction(G, name: str = "random", seed: int = 0) -> Direction:
    normal = torch.randn(512, generator=torch.Generator().manual_seed(seed))
    return Direction(name, normal, scale=1.0, latent_space=latent_space_digest(G))


def test_removal_with_b_zero_is_exactly_eg3d(band_scene):
    G = band_scene.G
    frame = 1
    ws, camera = band_scene.data.ws[frame : frame + 1], band_scene.data.cameras[frame : frame + 1]
    reference = G.synthesis(ws, camera, deterministic=True, sr_noise_mode="const")
    removed = band_scene.render(RenderRequest(frame, remove_ood=True, quality="full"))
    assert np.array_equal(removed.image, to_uint8(reference["image"][0]))
    torch.testing.assert_close(removed.raw, reference["image_raw"][0], atol=1e-5, rtol=0)
    kept = band_scene.render(RenderRequest(frame, quality="full"))
    assert np.abs(kept.image.astype(int) - removed.image.astype(int)).max() > 50  # the band is there


def test_edit_changes_only_the_in_distribution_part(band_scene):
    band_scene.add_direction(random_direction(band_scene.G))
    plain = band_scene.render(RenderRequest(1, with_blend=True))
    edited = band_scene.render(RenderRequest(1, edits={"random": 40.0}, with_blend=True))
    covered = torch.from_numpy(plain.ood_opacity > 0.99)
    assert covered.sum() > 20, "the band must cover some pixels"
    diff = (edited.raw - plain.raw).abs().amax(0).cpu()
    assert float(diff[covered].max()) < 0.02
    assert float(diff[~covered].max()) > 0.1  # the edit does move the face
    np.testing.assert_allclose(edited.ood_opacity[covered.numpy()], plain.ood_opacity[covered.numpy()], atol=1e-3)


def test_w_plus_offsets_are_applied_by_a_scene(band_scene):
    offsets = torch.zeros(band_scene.edits.ws.shape[1], 512)
    offsets[:4] = torch.randn(512, generator=torch.Generator().manual_seed(2))
    band_scene.add_direction(Direction.from_offsets("wplus", offsets))
    assert torch.equal(band_scene.edits.frame_ws(0, {"wplus": 1.5}), band_scene.edits.frame_ws(0) + 1.5 * offsets)
    plain = band_scene.render(RenderRequest(1, quality="preview")).raw
    edited = band_scene.render(RenderRequest(1, edits={"wplus": 1.5}, quality="preview")).raw
    assert float((edited - plain).abs().max()) > 0.01
    with pytest.raises(RenderError, match="are for 3 ws"):
        band_scene.add_direction(Direction.from_offsets("short", offsets[:3]))


def test_orbit_and_removal_reuse_the_cached_planes(band_scene):
    band_scene.clear_cache()
    start = band_scene.backbone_runs
    for yaw in (-0.3, 0.0, 0.3):
        band_scene.render(RenderRequest(0, camera=(yaw, 0.05)))
    band_scene.render(RenderRequest(0, remove_ood=True))
    band_scene.render(RenderRequest(0, remove_ood=True, removal="mask"))
    assert band_scene.backbone_runs - start == 1
    band_scene.add_direction(random_direction(band_scene.G))
    band_scene.render(RenderRequest(0, edits={"random": 1.0}))
    band_scene.render(RenderRequest(0, edits={"random": 1.0}, camera=(0.2, 0.0)))
    assert band_scene.backbone_runs - start == 2


def test_cache_is_bounded(tiny_generator):
    scene = Scene(band_scene_data(tiny_generator), cache_size=2)
    for frame in range(3):
        scene.planes(frame)
    assert len(scene._planes) == 2
    scene.planes(0)  # evicted: computed again
    assert scene.backbone_runs == 4


def test_camera_angles_and_novel_views(band_scene):
    yaw, pitch = band_scene.frame_angles(2)
    assert yaw == pytest.approx(0.3, abs=1e-4)  # make_synthetic_video sweeps yaw in [-0.3, 0.3]
    own = band_scene.render(RenderRequest(2))
    same = band_scene.render(RenderRequest(2, camera=(yaw, pitch)))
    assert np.abs(own.image.astype(int) - same.image.astype(int)).max() <= 2
    side = band_scene.render(RenderRequest(2, camera=(-0.4, 0.0)))
    assert np.abs(own.image.astype(int) - side.image.astype(int)).mean() > 2


def test_mask_guided_removal(band_scene):
    full = band_scene.render(RenderRequest(1, with_blend=True))
    auto = band_scene.render(RenderRequest(1, remove_ood=True, removal="mask", with_blend=True))
    band = full.ood_opacity > 0.5
    assert auto.ood_opacity[band].max() < 1e-3  # the whole band is removed
    # a user mask over the left half of the image removes only the left part of the band
    mask = np.zeros((512, 512), np.float32)
    mask[:, :200] = 1
    half = band_scene.render(RenderRequest(1, remove_ood=True, removal="mask", removal_mask=mask, with_blend=True))
    res = half.ood_opacity.shape[0]
    cols = np.arange(res)[None, :].repeat(res, 0)
    right = band & (cols > res * 0.6)
    left = band & (cols < res * 0.3)
    assert right.any() and left.any()
    assert half.ood_opacity[right].min() > 0.9
    assert half.ood_opacity[left].max() < 1e-3


def test_render_errors(band_scene):
    with pytest.raises(RenderError, match="out of range"):
        band_scene.render(RenderRequest(99))
    with pytest.raises(RenderError, match="unknown edit"):
        band_scene.render(RenderRequest(0, edits={"nope": 1.0}))
    with pytest.raises(RenderError, match="quality"):
        band_scene.render(RenderRequest(0, quality="ultra"))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"camera": (math.nan, 0.0)}, "camera yaw"), ({"camera": (0.0, math.inf)}, "camera pitch"),
        ({"camera": (0.0, 2.0)}, "camera pitch"), ({"camera": (7.0, 0.0)}, "camera yaw"),
        ({"camera": torch.full((1, 25), math.nan)}, "camera label"), ({"camera": (1.0,)}, "camera"),
        ({"edits": {"smile": math.nan}}, "smile"), ({"edits": {"smile": -math.inf}}, "smile"),
        ({"edits": {"smile": 1e6}}, "smile"), ({"frame": math.nan}, "frame"), ({"frame": -1}, "frame"),
        ({"frame": 1.5}, "frame"), ({"outside_scale": math.nan}, "outside_scale"),
        ({"outside_scale": -1}, "outside_scale"),
        ({"smoothing": "gaussian"}, "smoothing"), ({"removal_mask": np.full((8, 8), np.nan)}, "removal_mask"),
    ],
)  # fmt: skip
def test_render_request_refuses_numbers_a_render_cannot_use(fields, named):
    with pytest.raises(RenderError, match=named):
        RenderRequest(**fields)


def test_render_request_keeps_valid_numbers_as_plain_floats():
    r = RenderRequest(np.int64(2), camera=(np.float32(0.5), 0), edits={"smile": 1}, outside_scale=np.float64(1.2))
    assert r.frame == 2 and type(r.frame) is int and r.camera == (0.5, 0.0) and r.edits == {"smile": 1.0}
    assert r.at(1, (-math.pi, math.pi / 2)).camera == (-math.pi, math.pi / 2)  # the range's ends are valid


def test_scene_edits_refuse_non_finite_numbers_given_at_run_time(band_scene):
    from innout.edit.mapper import LevelsMapper
    from innout.scene.edits import SceneEdits

    scene = Scene(band_scene.data)  # its own edits: the module's scene keeps none of these
    G = scene.G
    bad = random_direction(G, "bad")
    bad.scale = math.nan
    with pytest.raises(RenderError, match="the scale of direction 'bad'"):
        scene.add_direction(bad)
    mapper = LevelsMapper("broken")
    with torch.no_grad():
        next(mapper.parameters()).view(-1)[0] = math.inf
    with pytest.raises(RenderError, match="the weights of mapper 'broken'"):
        scene.add_mapper(mapper)
    assert "bad" not in scene.edit_names and "broken" not in scene.edit_names
    ws = scene.data.ws.clone()
    ws[0, 0, 0] = math.nan
    with pytest.raises(RenderError, match="latents"):
        SceneEdits(G, ws, None)
    scene.add_direction(random_direction(G, "ok"))
    with pytest.raises(RenderError, match="strength of edit 'ok'"):
        scene.frame_ws(0, {"ok": math.inf})


def test_a_render_with_non_finite_pixels_is_refused_not_black(tiny_generator):
    import copy

    G = copy.deepcopy(tiny_generator)
    with torch.no_grad():
        G.decoder.net[0].weight[0, 0] = math.nan
    scene = Scene(band_scene_data(G, n_frames=2))
    with pytest.raises(RenderError, match="NaN or infinite pixels"):
        scene.render(RenderRequest(0))


def test_camera_construction_refuses_non_finite_numbers():
    from innout.eg3d.cameras import CameraError, intrinsics, make_label, orbit_label, split_label

    with pytest.raises(CameraError, match="camera yaw"):
        orbit_label(math.nan, 1.5)
    with pytest.raises(CameraError, match="camera pitch"):
        orbit_label(torch.tensor([1.5, 1.6]), torch.tensor([1.5, math.inf]))
    with pytest.raises(CameraError, match="focal length"):
        intrinsics(0.0)
    with pytest.raises(CameraError, match="orbit radius"):
        orbit_label(1.5, 1.5, radius=-2.7)
    with pytest.raises(CameraError, match=r"camera poses \(cam2world\) must be finite"):
        make_label(torch.full((1, 4, 4), math.inf))
    with pytest.raises(CameraError, match=r"shape \[N, 25\]"):
        split_label(torch.zeros(1, 24))


def test_camera_paths_and_exports_refuse_bad_numbers(band_scene, tmp_path):
    from innout.export import camera_path, export_camera_path
    from innout.export.paths import CameraPathError
    from innout.frames import FramesError

    for n_views, options in ((0, {}), (10**9, {}), (8, {"yaw": math.nan}), (8, {"pitch": 4.0})):
        with pytest.raises(CameraPathError, match="camera path"):
            camera_path("orbit", n_views, **options)
    for fps in (0.0, -25.0, math.nan, math.inf, 1e5):
        with pytest.raises(FramesError, match="fps must be a finite number > 0"):
            export_camera_path(band_scene, tmp_path / "a.mp4", 0, [(0.0, 0.0)], fps=fps)
    with pytest.raises(RenderError, match="camera yaw"):
        export_camera_path(band_scene, tmp_path / "b.mp4", 0, [(0.0, 0.0), (math.nan, 0.0)])
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_depth_output(band_scene):
    r = band_scene.render(RenderRequest(0, with_depth=True))
    assert r.depth.shape == r.ood_opacity.shape if r.ood_opacity is not None else r.depth.ndim == 2
    cfg = band_scene.G.rendering
    assert cfg.ray_start <= r.depth.min() and r.depth.max() <= cfg.ray_end


def test_official_causal_filter():
    x = torch.arange(6, dtype=torch.float32)[:, None] ** 2
    y = causal_smooth(x)
    assert torch.equal(y[:2], x[:2])
    assert y[4, 0] == pytest.approx(0.125 * 4 + 0.375 * 9 + 0.5 * 16)


def test_superresolution_history_blends_the_last_three_frames_own_values():
    history = SuperresolutionHistory()
    outs = [history(torch.full((1, 2, 4, 4), float(t)), torch.full((1, 3, 8, 8), 10.0 * t)) for t in range(5)]
    assert [float(x[0, 0, 0, 0]) for x, _ in outs] == [0.0, 1.0, 0.125 * 0 + 0.375 * 1 + 0.5 * 2, 2.375, 3.375]
    assert [float(s[0, 0, 0, 0]) for _, s in outs] == [0.0, 10.0, 13.75, 23.75, 33.75]  # unsmoothed history
    with pytest.raises(ValueError, match="changed shape"):
        history(torch.zeros(1, 2, 8, 8), None)


def test_sr_block0_smoothing_replaces_conv1_output_and_skip_image_before_torgb(tiny_generator):
    sr = tiny_generator.superresolution
    g = torch.Generator().manual_seed(5)
    ws = torch.randn(1, tiny_generator.num_ws, 512, generator=g)
    inputs = [(torch.randn(1, 3, 128, 128, generator=g), torch.randn(1, 32, 128, 128, generator=g)) for _ in range(3)]
    seen = []

    def record(x, img):
        seen.append((x.clone(), img.clone()))
        return x, img

    plain = [sr(rgb, feat, ws, noise_mode="const", block0_blend=record) for rgb, feat in inputs]
    for (rgb, feat), image in zip(inputs, plain, strict=True):  # a blend that changes nothing changes nothing
        torch.testing.assert_close(sr(rgb, feat, ws, noise_mode="const"), image, rtol=0, atol=0)
    hand = tuple(0.125 * a + 0.375 * b + 0.5 * c for a, b, c in zip(*seen, strict=True))
    expected = sr(*inputs[2], ws, noise_mode="const", block0_blend=lambda x, img: hand)
    history = SuperresolutionHistory()
    smoothed = [sr(rgb, feat, ws, noise_mode="const", block0_blend=history) for rgb, feat in inputs]
    torch.testing.assert_close(smoothed[0], plain[0], rtol=0, atol=0)
    torch.testing.assert_close(smoothed[1], plain[1], rtol=0, atol=0)
    torch.testing.assert_close(smoothed[2], expected)
    assert float((smoothed[2] - plain[2]).abs().mean()) > 1e-3


def test_zero_lag_filter_keeps_ramps_in_place():
    ramp = torch.linspace(0, 1, 7)[:, None]
    torch.testing.assert_close(zero_lag_smooth(ramp)[1:-1], ramp[1:-1])  # no lag on linear motion
    assert float((causal_smooth(ramp) - ramp)[3:].mean()) < -0.05  # the causal filter lags behind
    noisy = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert zero_lag_smooth(noisy).diff(dim=0).std() < noisy.diff(dim=0).std()
    with pytest.raises(ValueError):
        smooth(noisy, "gaussian")


def test_smoothing_changes_the_render_of_a_moving_sequence(tiny_generator):
    scene = Scene(band_scene_data(tiny_generator, n_frames=4))
    plain = scene.frame_ws(3)
    smoothed = scene.frame_ws(3, smoothing="causal")
    ws = scene.data.ws
    torch.testing.assert_close(smoothed[0], 0.125 * ws[1] + 0.375 * ws[2] + 0.5 * ws[3])
    assert not torch.equal(plain, smoothed)
    a = scene.render(RenderRequest(3, smoothing="causal")).image
    b = scene.render(RenderRequest(3)).image
    assert not np.array_equal(a, b)
    assert math.isfinite(float(np.mean(a)))


def test_drag_preview_interpolates_cached_knot_planes(tiny_generator):
    scene = Scene(band_scene_data(tiny_generator, n_frames=2))
    scene.add_direction(random_direction(scene.G, "a", seed=1))
    scene.add_direction(random_direction(scene.G, "b", seed=2))
    assert scene.edit_knots("a") == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert scene.warm_edit_knots(0) == 1 + 2 * 4  # the unedited planes, then 4 knots per edit
    assert scene.warm_edit_knots(0) == 0
    runs = scene.backbone_runs
    # at a knot, the preview is the exact render; between knots it stays close; no backbone run either way
    at_knot = scene.render(RenderRequest(0, edits={"a": 1.5}, approximate_edits=True))
    between = scene.render(RenderRequest(0, edits={"a": 0.7, "b": -2.2}, approximate_edits=True))
    assert scene.backbone_runs == runs
    exact_knot = scene.render(RenderRequest(0, edits={"a": 1.5}))
    exact_between = scene.render(RenderRequest(0, edits={"a": 0.7, "b": -2.2}))
    torch.testing.assert_close(at_knot.raw, exact_knot.raw, atol=1e-5, rtol=0)
    unedited = scene.render(RenderRequest(0))
    change = (exact_between.raw - unedited.raw).abs().mean()
    error = (between.raw - exact_between.raw).abs().mean()
    assert float(error) < 0.25 * float(change), (float(error), float(change))
    # strengths beyond the range are clamped to it, like the slider
    beyond = scene.render(RenderRequest(0, edits={"a": 9.0}, approximate_edits=True)).raw
    torch.testing.assert_close(beyond, scene.render(RenderRequest(0, edits={"a": 3.0})).raw, atol=1e-5, rtol=0)


def test_a_direction_learned_again_under_its_name_is_what_renders_not_the_cached_old_one(tiny_generator, tmp_path):
    """The plane caches are keyed by edit name and strength: replacing a direction (a relearned 'smile', a file
    loaded again with new numbers) must empty them, and giving the same direction again must not."""
    from innout.edit.directions import save_direction

    scene = Scene(band_scene_data(tiny_generator, n_frames=2))
    scene.add_direction(random_direction(scene.G, "a", seed=1))
    scene.warm_edit_knots(0)
    old_exact = scene.render(RenderRequest(0, edits={"a": 1.5})).raw
    old_drag = scene.render(RenderRequest(0, edits={"a": 1.5}, approximate_edits=True)).raw
    runs = scene.backbone_runs
    scene.add_direction(random_direction(scene.G, "a", seed=1))  # the same numbers: the caches stay
    scene.render(RenderRequest(0, edits={"a": 1.5}))
    assert scene.backbone_runs == runs

    scene.add_direction(random_direction(scene.G, "a", seed=7))  # learned again: other numbers
    fresh = Scene(band_scene_data(tiny_generator, n_frames=2))
    fresh.add_direction(random_direction(fresh.G, "a", seed=7))
    expected = fresh.render(RenderRequest(0, edits={"a": 1.5})).raw
    torch.testing.assert_close(scene.render(RenderRequest(0, edits={"a": 1.5})).raw, expected, atol=1e-6, rtol=0)
    assert float((expected - old_exact).abs().max()) > 1e-3  # the two directions do differ here
    scene.warm_edit_knots(0)
    drag = scene.render(RenderRequest(0, edits={"a": 1.5}, approximate_edits=True)).raw
    torch.testing.assert_close(drag, expected, atol=1e-5, rtol=0)
    assert float((drag - old_drag).abs().max()) > 1e-3

    save_direction(random_direction(scene.G, "a", seed=9), tmp_path / "a.safetensors")  # from a file, too
    scene.load_directions([tmp_path])
    fresh.add_direction(random_direction(fresh.G, "a", seed=9))
    torch.testing.assert_close(scene.render(RenderRequest(0, edits={"a": 1.5})).raw,
                               fresh.render(RenderRequest(0, edits={"a": 1.5})).raw, atol=1e-6, rtol=0)  # fmt: skip


def test_mapper_edits_are_made_before_smoothing_as_the_official_code(tiny_generator):
    from innout.edit.mapper import LevelsMapper
    from innout.scene import SceneEdits

    ws = torch.randn(5, 14, 512, generator=torch.Generator().manual_seed(0))
    mapper = LevelsMapper(name="m")
    with torch.no_grad():
        for p in mapper.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))  # a mapper that does something
    edits = SceneEdits(tiny_generator, ws, None)
    edits.add_mapper(mapper)
    got = edits.frame_ws(4, {"m": 1.0}, smoothing="causal")
    torch.testing.assert_close(got, smooth(mapper.edit(ws, 1.0), "causal")[4:5])
    assert not torch.allclose(got, mapper.edit(smooth(ws, "causal")[4:5], 1.0))  # the other order differs


# -- hostile and damaged scene files ---------------------------------------------------------------------------


def test_micro_scene_round_trip_is_hashed(tmp_path):
    from innout.scene import load_scene
    from innout.storage import DIGEST_KEY, read_metadata
    from tests.hostile.files import micro_scene

    path = micro_scene(tmp_path, n_frames=3)
    assert DIGEST_KEY in read_metadata(path)
    data = load_scene(path)
    assert data.n_frames == 3 and data.ood.resolution == 4 and data.ood.code_dim == 4
    assert data.source.frames == [0, 1, 2] and data.generator.config.w_dim == 8
    again = load_scene(save_scene(data, tmp_path / "again.safetensors"))
    assert torch.equal(again.ws, data.ws) and torch.equal(again.ood.triplanes, data.ood.triplanes)


def test_version_1_scene_is_read(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from innout.scene import load_scene
    from innout.storage import read_metadata
    from tests.hostile.files import micro_scene

    path = micro_scene(tmp_path)
    tensors, meta = load_file(str(path)), read_metadata(path)
    old = {"frame_indices": tensors.pop("source.frames")}
    for key in [k for k in tensors if k.startswith("ood.decoder.net.")]:
        old["ood.decoder." + key[len("ood.decoder.net.") :]] = tensors.pop(key)
    meta = {**meta, "innout_scene_version": "1", "source": json.dumps({"fps": 25.0, "crop_size": 512})}
    meta.pop("innout_sha256")
    save_file({**tensors, **old}, str(tmp_path / "v1.safetensors"), metadata=meta)
    data, current = load_scene(tmp_path / "v1.safetensors"), load_scene(path)
    assert data.source.frames == [0, 1] and data.source.fps == 25.0
    assert torch.equal(data.ood.decoder.net[0].weight, current.ood.decoder.net[0].weight)


def _scene_variants(tmp_path):
    import json

    from tests.hostile import files as rf

    def config(**changes):
        return rf._config_text(**changes)

    scene = rf.micro_scene(tmp_path)
    ws = torch.zeros(2, 14, 8)
    ws[0, 0, 0] = float("inf")

    def variant(name, **rewrite):
        return rf.rewrite_safetensors(scene, tmp_path / f"{name}.safetensors", **rewrite)

    ood = {"ood": json.dumps({"resolution": 1024, "code_dim": 4})}
    return [
        (variant("no-config", drop_meta=("generator_config",)), "lacks its 'generator_config' metadata"),
        (variant("no-ood", drop_meta=("ood",)), "lacks its 'ood' metadata"),
        (variant("no-source", drop_meta=("source",)), "lacks its 'source' metadata"),
        (variant("v1", metadata={"innout_scene_version": "1"}), "version 1 scene lacks its frame_indices"),
        (variant("v9", metadata={"innout_scene_version": "9"}), "not an In-N-Out scene"),
        (variant("ood-bomb", metadata={"ood": json.dumps({"resolution": 60000, "code_dim": 4})}), "from 1 to 1024"),
        (variant("ood-mismatch", metadata=ood), r"triplanes \[1, 3, 32, 4, 4\] vs \[1, 3, 32, 1024, 1024\]"),
        (variant("ood-not-json", metadata={"ood": "{"}), "'ood' metadata is not valid JSON"),
        (variant("ood-float", metadata={"ood": json.dumps({"resolution": 4.0, "code_dim": 4})}), "whole"),
        (variant("inf-ws", tensors={"ws": ws}), r"NaN or infinite values \(ws\)"),
        (variant("ws-width", tensors={"ws": torch.zeros(2, 14, 9)}), r"ws has shape \[2, 14, 9\], expected"),
        (variant("cameras", tensors={"cameras": torch.zeros(3, 25)}), r"cameras has shape \[3, 25\]"),
        (variant("frames", tensors={"source.frames": torch.zeros(2)}), "expected integers"),
        (variant("negative", tensors={"source.frames": torch.tensor([0, -4])}), "must not be negative"),
        (variant("no-ws", drop=("ws",)), r"lacks the tensor\(s\) ws"),
        (variant("extra", tensors={"extra": torch.zeros(1)}), r"unexpected tensors \['extra'\]"),
        (variant("gen", drop=("generator.decoder.net.0.weight",)), "missing .'decoder.net.0.weight'."),
        (variant("huge-config", metadata={"generator_config": config(img_resolution=1 << 30)}), "img_resolution"),
        (variant("fps", metadata={"source": json.dumps({"fps": float("nan")})}), "frame rate"),
        (rf.truncated(scene, tmp_path / "truncated.safetensors"), "not a readable safetensors scene file"),
        (rf.garbled(scene, tmp_path / "garbled.safetensors"), "does not match its hash"),
    ]


def test_hostile_scene_files_are_refused_before_anything_is_built(tmp_path):
    from innout.scene import SceneFormatError, load_scene

    for path, message in _scene_variants(tmp_path):
        with pytest.raises(SceneFormatError, match=message) as info:
            load_scene(path)
        assert str(path) in str(info.value), path.name


def test_scene_ood_size_bomb_is_refused_within_memory(tmp_path):
    import json

    from innout.bench.processes import peak_rss_mb
    from tests.hostile.files import MEMORY_BOUND_MB, micro_scene, rewrite_safetensors

    bomb = rewrite_safetensors(
        micro_scene(tmp_path), tmp_path / "bomb.safetensors",
        metadata={"ood": json.dumps({"resolution": 1024, "code_dim": 1 << 20})},
    )  # fmt: skip
    code = f"""
from innout.scene import SceneFormatError, load_scene
try:
    load_scene({str(bomb)!r})
except SceneFormatError as exc:
    print("refused", exc)
"""
    peak, last = peak_rss_mb(code)
    assert last.startswith("refused") and "code size 1048576" in last and peak < MEMORY_BOUND_MB


def test_a_moving_ood_field_round_trips_and_a_scene_without_motion_still_reads(tmp_path):
    import dataclasses

    from innout.scene import load_scene
    from innout.scene.ood_field import OODField
    from tests.hostile.files import micro_scene

    data = load_scene(micro_scene(tmp_path, n_frames=3))  # written without the motion flag
    assert not data.ood.motion
    moving = OODField(3, resolution=data.ood.resolution, code_dim=data.ood.code_dim, motion=True)
    with torch.no_grad():
        moving.offsets.copy_(torch.arange(9.0).reshape(3, 3) / 100)
    again = load_scene(save_scene(dataclasses.replace(data, ood=moving), tmp_path / "moving.safetensors"))
    assert again.ood.motion and torch.equal(again.ood.offsets, moving.offsets)
