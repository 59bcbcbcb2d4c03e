"""The fitting engine: presets and overrides, losses, resumable loop, NN init, stage caches, scene files,
mask propagation, and the synthetic benchmark with ground truth at test scale."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from innout.eg3d.cameras import INO_FOCAL, frontal_label
from innout.eg3d.random import synthetic_generator
from innout.fit.config import FitConfig, InitConfig
from innout.fit.data import FitData
from innout.fit.init import nearest_neighbour_init
from innout.fit.loop import StageRun, latest_checkpoint, run_loop
from innout.fit.losses import blend_entropy, delta_regulariser, masked_l2, w_regulariser
from innout.fit.masks import propagate_mask
from innout.fit.pipeline import FitPipeline
from innout.fit.presets import get_preset
from innout.scene import SceneFormatError, load_scene
from innout.settings import SettingError, apply_overrides
from innout.world.band import make_synthetic_video, render_scene_raw

from .conftest import requires


def test_presets_and_overrides():
    for name in ("paper", "fast", "preview"):
        cfg = get_preset(name)
        assert cfg.name == name
        assert FitConfig.from_dict(cfg.to_dict()) == cfg
    paper = get_preset("paper")
    assert (paper.init.samples, paper.inversion.subset_frames, paper.inversion.residual_scale) == (500, 16, 0.7)
    assert (paper.joint.iterations, paper.joint.lr) == (10_000, 5e-3)
    assert (paper.superres.lr, paper.superres.epochs) == (1e-3, 100)
    cfg = apply_overrides(
        get_preset("preview"),
        ["joint.iterations=7", "joint.lr=0.01", "init.samples_per_ray=16,8", "inversion.resolution=None",
         "superres.cache_renders=false", "max_frames=3"],
    )
    assert cfg.joint.iterations == 7 and cfg.joint.lr == 0.01 and cfg.init.samples_per_ray == (16, 8)
    assert cfg.inversion.resolution is None and cfg.superres.cache_renders is False and cfg.max_frames == 3
    with pytest.raises(SettingError, match="unknown setting"):
        apply_overrides(get_preset("preview"), ["joint.iteration=3"])
    with pytest.raises(SettingError, match="joint.iterations"):
        apply_overrides(get_preset("preview"), ["joint.iterations=many"])
    with pytest.raises(SettingError, match="unknown preset"):
        get_preset("best")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("joint.lr=nan", "joint.lr"), ("joint.lr=inf", "joint.lr"), ("superres.lr=0", "superres.lr"),
        ("joint.iterations=-5", "joint.iterations"), ("init.samples=0", "init.samples"),
        ("max_frames=0", "max_frames"), ("init.batch=0", "init.batch"), ("joint.lambda_w=-1", "joint.lambda_w"),
        ("inversion.rampup=1.5", "inversion.rampup"), ("joint.resolution=0", "joint.resolution"),
        ("joint.ood_resolution=1e9", "joint.ood_resolution"), ("init.samples_per_ray=16", "init.samples_per_ray"),
        ("init.samples_per_ray=0,4", "init.samples_per_ray"), ("pti.checkpoint_every=0", "pti.checkpoint_every"),
        ("seed=-1", "seed"), ("joint.iterations=2.5", "joint.iterations"), ("init.lpips_net=squeeze", "lpips_net"),
        ("superres.cache_renders=maybe", "cache_renders"), ("joint=3", "joint"),
        ("joint.w_allowance=mean", "joint.w_allowance"),
    ],
)  # fmt: skip
def test_every_setting_is_checked_against_its_documented_range(override, named):
    with pytest.raises(SettingError, match=named.replace(".", r"\.")) as refused:
        apply_overrides(get_preset("preview"), [override])
    assert "must be" in str(refused.value) or "group" in str(refused.value)


def test_settings_are_checked_on_every_path_in():
    """Constructor, assignment, dataclasses.replace and from_dict (JSON) all refuse a bad value at once."""
    import json

    from innout.fit.config import JointConfig
    from innout.fit.presets import scaled
    with pytest.raises(SettingError, match=r"init\.samples must be an integer >= 1"):
        InitConfig(samples=0)
    cfg = get_preset("preview")
    with pytest.raises(SettingError, match=r"joint\.lr must be a finite number > 0"):
        cfg.joint.lr = float("nan")
    assert cfg.joint.lr == get_preset("preview").joint.lr  # the refused value was not kept
    with pytest.raises(SettingError, match="joint.iterations"):
        cfg.joint.iterations = True  # a bool is no count
    with pytest.raises(SettingError, match="unknown setting 'joint.iteration'"):
        cfg.joint.iteration = 3  # a typo is not a new attribute
    with pytest.raises(SettingError, match="joint.iterations"):
        dataclasses.replace(cfg.joint, iterations=-1)
    with pytest.raises(SettingError, match=r"joint\.lr"):
        FitConfig.from_dict(json.loads('{"joint": {"lr": NaN}}'))
    with pytest.raises(SettingError, match=r"unknown setting 'joint\.nope' \(known here: .*iterations"):
        FitConfig.from_dict({"joint": {"nope": 1}})
    with pytest.raises(SettingError, match="effort"):
        scaled(cfg, float("nan"))
    # valid values are normalised: integral floats to ints, lists to tuples, ints to floats
    ok = FitConfig.from_dict({"max_frames": 4.0, "init": {"samples_per_ray": [8, 0]}, "joint": {"lr": 1}})
    assert ok.max_frames == 4 and isinstance(ok.max_frames, int)
    assert ok.init.samples_per_ray == (8, 0) and isinstance(ok.joint.lr, float)
    assert JointConfig(iterations=0, latent_lr=0.0).iterations == 0  # 0 skips a stage / freezes the latents
    assert FitConfig.from_dict(json.loads(get_preset("paper").to_json())) == get_preset("paper")


def test_cli_fit_refuses_a_bad_setting_before_any_work(tmp_path, capsys):
    import time

    from innout.cli import main

    start = time.perf_counter()
    code = main(["fit", str(tmp_path / "not-read.mp4"), "--set", "joint.lr=nan", "--workdir", str(tmp_path / "w"),
                 "--random-generator", "tiny"])  # fmt: skip
    assert code == 2 and "joint.lr must be a finite number > 0" in capsys.readouterr().err
    assert time.perf_counter() - start < 2 and not (tmp_path / "w").exists()
    with pytest.raises(SystemExit) as usage:
        main(["fit", str(tmp_path / "x.mp4"), "--max-frames", "0"])
    assert usage.value.code == 2 and "--max-frames: must be an integer >= 1" in capsys.readouterr().err


def test_l_w_is_the_mean_distance_from_w_avg_or_only_its_part_beyond_each_frames_allowance():
    w_avg = torch.zeros(1, 1, 2)
    ws = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[3.0, 0.0], [0.0, 4.0]]])  # distances 2 and 5
    assert float(w_regulariser(ws, w_avg)) == 3.5
    assert float(w_regulariser(ws, w_avg, torch.tensor([1.0, 6.0]))) == 0.5  # (2 - 1) and nothing beyond 6
    assert float(w_regulariser(ws, w_avg + 1, torch.tensor([0.0, 0.0]))) == pytest.approx(15**0.5 / 2)  # 0, (2,-1,-1,3)


def test_loss_terms():
    b = torch.tensor([0.0, 1.0])
    assert 0 <= blend_entropy(b) < 2e-6 and torch.isfinite(blend_entropy(b))
    grid = torch.linspace(0.01, 0.99, 99)
    values = torch.stack([blend_entropy(g.reshape(1)) for g in grid])
    assert abs(float(grid[values.argmax()]) - 0.5**0.5) < 0.011  # H(b^2) peaks where b^2 = 1/2
    ws = torch.randn(2, 1, 8).expand(2, 14, 8)
    assert float(delta_regulariser(ws)) == 0
    image, target = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert float(masked_l2(image, target, torch.zeros(1, 1, 4, 4))) == 0  # no division by zero
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    assert float(masked_l2(image, target, mask)) == 1


def test_the_background_colours_are_drawn_from_the_seed_and_the_step_alone():
    """``background_colours``: a resumed stage draws the same colour for a step; steps and seeds differ."""
    from innout.fit.losses import background_colours

    cpu = torch.device("cpu")
    first = background_colours(2, seed=0, step=7, device=cpu)
    torch.rand(5)  # the global generator is not used
    assert first.shape == (2, 3, 1, 1) and 0 <= float(first.min()) and float(first.max()) <= 1
    assert torch.equal(first, background_colours(2, seed=0, step=7, device=cpu))
    assert not torch.equal(first, background_colours(2, seed=0, step=8, device=cpu))
    assert not torch.equal(first, background_colours(2, seed=1, step=7, device=cpu))
    torch.manual_seed(0 * 1_000_003 + 7)  # what the loop seeds step 7 with: the render's jitter, not the colours
    assert not torch.equal(first.flatten(), torch.rand(6))


def test_loop_resumes_exactly(tmp_path):
    """A run interrupted after a checkpoint and resumed ends where an uninterrupted run ends."""

    def train(checkpoint, stop_at=None):
        x = torch.nn.Parameter(torch.zeros(5))
        opt = torch.optim.Adam([x], lr=0.1)

        def step(i):
            if stop_at is not None and i == stop_at:
                raise KeyboardInterrupt
            noise = torch.randn(5)  # seeded per step by the loop
            loss = (x - noise).square().sum()
            loss.backward()
            return {"loss": float(loss.detach())}

        history = run_loop("t", 10, step, {"x": x}, opt, seed=1, checkpoint=checkpoint, every=3)
        return x.detach().clone(), history

    reference, ref_history = train(None)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train(ckpt, stop_at=7)
    saved = latest_checkpoint(ckpt)
    assert saved is not None and saved.parent == tmp_path and torch.load(saved, weights_only=True)["step"] == 6
    resumed, history = train(ckpt)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=0)
    assert [h["loss"] for h in history] == [h["loss"] for h in ref_history]


@pytest.fixture(scope="module")
def grey_generator():
    return synthetic_generator()


def test_nearest_neighbour_init_finds_the_generating_candidate(grey_generator):
    G = grey_generator
    cfg = InitConfig(samples=6, batch=4, compare="raw", lpips_net="alex")
    z = torch.randn(cfg.samples, G.z_dim, generator=torch.Generator().manual_seed(11))  # the init's own draw
    ws = G.mapping(z[4:5], frontal_label(INO_FOCAL))
    cameras = torch.cat([frontal_label(), frontal_label()])
    with torch.no_grad():
        targets = G.render_planes(G.synthesize_planes(ws).expand(2, -1, -1, -1, -1), cameras).image_raw
    result = nearest_neighbour_init(G, FitData(targets, cameras, key="nn"), cfg, run=StageRun(seed=11))
    torch.testing.assert_close(result.ws, ws.expand(2, -1, -1))
    assert float(result.distances.max()) < 0.05


def _tiny_config(iterations=30, sr_epochs=1) -> FitConfig:
    cfg = FitConfig(name="test", seed=5)
    cfg.init = InitConfig(samples=2, batch=2, compare="raw", lpips_net="alex")
    cfg.inversion = dataclasses.replace(
        cfg.inversion, subset_frames=1, subset_epochs=3, all_epochs=1, lpips_net="alex", compare="raw"
    )
    cfg.joint = dataclasses.replace(
        cfg.joint, iterations=iterations, ood_resolution=16, lpips_net="alex", lambda_l2_sr=0.0, checkpoint_every=10,
        bootstrap_steps=20,
    )
    cfg.superres = dataclasses.replace(cfg.superres, epochs=sr_epochs, lpips_net="alex")
    cfg.pti = dataclasses.replace(cfg.pti, steps=3, lpips_net="alex")
    return cfg


def test_pipeline_caches_stages_resumes_and_writes_a_scene(tmp_path, grey_generator, device):
    G = grey_generator if device.type == "cpu" else copy.deepcopy(grey_generator).to(device)
    data = make_synthetic_video(grey_generator, 2).fit_data().to(device)
    log: list[str] = []
    out = FitPipeline(G, data, _tiny_config(), tmp_path / "a", log=log.append).run("innout")
    assert not any("cached" in m for m in log)
    scene = load_scene(out)
    assert scene.method == "innout" and scene.ood is not None and scene.ws.shape == (2, 14, 512)
    assert set(scene.history) == {"init", "invert", "joint", "superres"}
    assert len(scene.history["joint"]) == 30
    # the SR stage changed the scene's SR module only
    assert not torch.equal(
        scene.generator.superresolution.block1.torgb.weight, G.superresolution.block1.torgb.weight.cpu()
    )
    assert torch.equal(scene.generator.backbone.synthesis.b4.const, G.backbone.synthesis.b4.const.cpu())

    # the same fit again: everything cached, identical scene
    log.clear()
    again = load_scene(FitPipeline(G, data, _tiny_config(), tmp_path / "a", log=log.append).run("innout"))
    assert sum("cached" in m for m in log) == 4
    torch.testing.assert_close(again.ws, scene.ws, rtol=0, atol=0)

    # killed in the joint stage after a checkpoint, then resumed: the result equals the straight run
    def killer(stage, done, total, losses):
        if stage == "joint" and done == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FitPipeline(G, data, _tiny_config(sr_epochs=0), tmp_path / "b", progress=killer).run("innout")
    log.clear()
    resumed = load_scene(FitPipeline(G, data, _tiny_config(sr_epochs=0), tmp_path / "b", log=log.append).run("innout"))
    assert any(m.startswith("init: cached") for m in log) and any(m.startswith("invert: cached") for m in log)
    assert any(m.startswith("joint: resuming") for m in log)
    if device.type == "cpu":
        for name, value in scene.ood.state_dict().items():
            torch.testing.assert_close(resumed.ood.state_dict()[name], value, rtol=0, atol=0)
    else:  # CUDA's atomic adds make two straight runs differ: the resumed run must be as close as a rerun is
        rerun = load_scene(FitPipeline(G, data, _tiny_config(sr_epochs=0), tmp_path / "c").run("innout"))
        for name, value in scene.ood.state_dict().items():
            noise = float((rerun.ood.state_dict()[name] - value).abs().max())
            assert float((resumed.ood.state_dict()[name] - value).abs().max()) <= 3 * noise + 1e-5, name

    # changing a joint setting re-runs the joint stage (and what follows), not the inversion
    log.clear()
    FitPipeline(G, data, _tiny_config(iterations=12, sr_epochs=0), tmp_path / "a", log=log.append).run("innout")
    assert any(m.startswith("invert: cached") for m in log) and not any(m.startswith("joint: cached") for m in log)


def test_the_joint_stages_decisions_are_logged_kept_with_its_result_and_made_again_on_resume(tmp_path, grey_generator):
    """``FitPipeline.decisions["joint"]``: what the stage decided from its first guess, logged in words: with 'auto'
    motion the motion ratio (the grey clip's guess moves: no head-start depth then), without motion the head start's
    depth offset. A cached result gives them back; a resumed stage (its head start is not run again) reports the
    same decisions as the straight run."""
    from innout.fit.bootstrap import MOTION_RATIO

    data = make_synthetic_video(grey_generator, 2).fit_data()
    cfg = _tiny_config(iterations=12, sr_epochs=0)
    log: list[str] = []
    auto = FitPipeline(grey_generator, data, cfg, tmp_path, log=log.append)
    auto.run("innout")
    decided = auto.decisions["joint"]
    assert decided["moves"] == float(decided["motion_ratio"] > MOTION_RATIO) == 1.0
    assert set(decided) == {"motion_ratio", "moves"}
    assert sum(m.startswith("joint: the object moves against the head (motion ratio") for m in log) == 1
    cached = FitPipeline(grey_generator, data, cfg, tmp_path)
    cached.run("innout")
    assert cached.decisions["joint"] == decided

    cfg.joint.ood_motion = "none"
    straight = FitPipeline(grey_generator, data, cfg, tmp_path)
    straight.run("innout")
    decided = straight.decisions["joint"]
    assert set(decided) == {"depth_offset", "depth_best", "depth_gain"}

    def killer(stage, done, total, losses):
        if stage == "joint" and done == 11:
            raise KeyboardInterrupt

    cfg.joint.iterations = 14  # another joint stage (the same start, so the same decisions), on the cached inversion
    with pytest.raises(KeyboardInterrupt):
        FitPipeline(grey_generator, data, cfg, tmp_path, progress=killer).run("innout")
    log.clear()
    resumed = FitPipeline(grey_generator, data, cfg, tmp_path, log=log.append)
    resumed.run("innout")
    assert any(m.startswith("joint: resuming") for m in log)
    assert resumed.decisions["joint"] == decided
    assert any(m.startswith("joint: head start") for m in log)
    log.clear()
    FitPipeline(grey_generator, data, cfg, tmp_path, log=log.append).run("innout")  # cached: said again
    assert any(m.startswith("joint: cached") for m in log) and any(m.startswith("joint: head start") for m in log)


def test_joint_snapshots_keep_the_parameters_of_their_step_and_change_nothing_else(tmp_path, grey_generator):
    """``joint_snapshots`` (the world benchmark's ``--curve``): each snapshot holds the parameters after its step
    (equal to the checkpoint the stage writes at that step), the scene at the stage's end equals a fit without
    snapshots, a cached result without them is computed again, and a checkpoint past a missing snapshot is not
    resumed from (the snapshot could never be written)."""
    from innout.fit.pipeline import snapshot_name
    from innout.storage import load_checkpoint, load_tensors

    G = grey_generator
    data = make_synthetic_video(G, 2).fit_data()
    cfg = _tiny_config(iterations=12, sr_epochs=0)
    cfg.joint.checkpoint_every = 4
    plain = load_scene(FitPipeline(G, data, cfg, tmp_path).run("innout"))

    seen: dict[int, dict] = {}

    def killer(stage, done, total, losses):  # the checkpoint of step 8 is on disk when step 9 ends
        if stage == "joint" and done == 9:
            folder = next(p for p in tmp_path.glob("joint-*") if (p / snapshot_name(4)).is_file())
            seen.update(load_checkpoint(latest_checkpoint(folder / "checkpoint.pt")))
            raise KeyboardInterrupt

    # the plain fit's cached result has no snapshots: asking for them computes the stage again
    with pytest.raises(KeyboardInterrupt):
        FitPipeline(G, data, cfg, tmp_path, progress=killer, joint_snapshots=(4, 8)).run("innout")
    pipeline = FitPipeline(G, data, cfg, tmp_path, joint_snapshots=(4, 8))
    curved = load_scene(pipeline.run("innout"))
    at_8, _ = load_tensors(pipeline.stage_folders["joint"] / snapshot_name(8))
    assert seen["step"] == 8
    for name, value in seen["params"].items():
        torch.testing.assert_close(at_8[name], value, rtol=0, atol=0)
    for name, value in plain.ood.state_dict().items():
        torch.testing.assert_close(curved.ood.state_dict()[name], value, rtol=0, atol=0)
    at_4 = load_scene(pipeline.snapshot_scene(4, tmp_path / "at4.safetensors"))
    at_12 = load_scene(pipeline.snapshot_scene(12, tmp_path / "at12.safetensors"))
    assert not torch.equal(at_4.ood.triplanes, at_12.ood.triplanes)
    torch.testing.assert_close(at_12.ood.triplanes, plain.ood.triplanes, rtol=0, atol=0)
    assert not torch.equal(at_4.ws, at_12.ws)  # the latents are trained in the stage too
    with pytest.raises(ValueError, match="snapshot"):
        pipeline.snapshot_scene(6, tmp_path / "at6.safetensors")

    # another joint stage, run without snapshots and killed at step 10 (checkpoint 8): asked for step 4, it starts over
    other = FitConfig.from_dict(cfg.to_dict())
    other.joint.lambda_entropy = 0.5
    steps: list[int] = []

    def kill_at_10(stage, done, total, losses):
        if stage == "joint":
            steps.append(done)
            if done == 10:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FitPipeline(G, data, other, tmp_path, progress=kill_at_10).run("innout")
    steps.clear()
    late = FitPipeline(G, data, other, tmp_path, joint_snapshots=(4,), progress=kill_at_10)
    with pytest.raises(KeyboardInterrupt):
        late.run("innout")
    assert steps[0] == 1  # from the start, not from the checkpoint of step 8
    assert (late.stage_folders["joint"] / snapshot_name(4)).is_file()


def test_baselines_share_the_code_path(tmp_path, grey_generator):
    G = grey_generator
    data = make_synthetic_video(G, 2).fit_data()
    cfg = _tiny_config()
    w = load_scene(FitPipeline(G, data, cfg, tmp_path).run("w"))
    assert w.ood is None and torch.equal(w.ws[:, :1].expand(-1, 14, -1), w.ws)  # one code per frame
    pti = load_scene(FitPipeline(G, data, cfg, tmp_path).run("pti"))
    assert pti.ood is None and len(pti.history["pti"]) == 3
    assert not torch.equal(pti.generator.decoder.net[0].weight, G.decoder.net[0].weight)  # the generator was tuned
    image, opacity = render_scene_raw(pti, torch.arange(2))
    assert image.shape == (2, 3, 32, 32) and float(opacity.abs().max()) == 0


def test_scene_file_rejects_other_files(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a scene")
    with pytest.raises(SceneFormatError):
        load_scene(bad)
    with pytest.raises(SceneFormatError, match="no scene file"):
        load_scene(tmp_path / "missing.safetensors")


def test_first_frame_mask_follows_the_motion():
    rng = np.random.default_rng(0)
    base = (rng.random((80, 96, 3)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (5, 5), 0)
    crops = np.stack([base[8:72, 8:72], base[8:72, 11:75], base[8:72, 14:78]])  # content moves 3 px left per frame
    mask = np.zeros((64, 64), bool)
    mask[20:40, 30:50] = True
    masks = propagate_mask(crops, mask)
    for t in (1, 2):
        expected = np.roll(mask, -3 * t, axis=1)
        iou = (masks[t] & expected).sum() / (masks[t] | expected).sum()
        assert iou > 0.8, (t, iou)


def _check_synthetic_benchmark(generator: str, min_iou: float) -> None:
    from innout.bench.fit import run_fit_benchmark

    rows = {r["method"]: r for r in run_fit_benchmark("tiny", generator=generator)}
    ours, wplus, pti = rows["innout"], rows["w+"], rows["pti"]
    assert ours["psnr_ood"] >= wplus["psnr_ood"] + 3, rows
    assert ours["psnr_ood"] >= pti["psnr_ood"] + 3, rows
    assert ours["mask_iou"] >= min_iou, rows
    assert ours["removal_psnr"] > ours["composite_vs_clean_psnr"], rows
    assert ours["psnr"] > wplus["psnr"], rows


def test_synthetic_benchmark_at_test_scale_with_a_generator_that_can_imitate_the_object():
    """In-N-Out against W+ and PTI on a synthetic video with a known OOD band (tiny scale, deterministic, the
    paper's learning rates, latents trained): the colour generator can partly imitate the red band, as a face GAN
    imitates make-up; without the OOD field's head start its mask IoU is 0.000 here (README)."""
    _check_synthetic_benchmark("colour", min_iou=0.5)


@pytest.mark.slow
def test_synthetic_benchmark_at_test_scale_with_a_grey_only_generator():
    _check_synthetic_benchmark("grey", min_iou=0.6)


@requires("mediapipe")
def test_cli_fit_a_photo_with_a_mask_and_clear_errors(tmp_path, monkeypatch, capsys):
    """`python -m innout fit` end to end on one photo (random tiny generator), semi-supervised with a mask."""
    import cv2
    from skimage import data as skdata

    from innout.cli import main

    monkeypatch.setenv("INNOUT_CACHE_DIR", str(tmp_path / "cache"))
    photo = tmp_path / "portrait.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    mask = np.zeros((512, 512), np.uint8)
    mask[200:260, 120:400] = 255  # a band over the eyes of the aligned crop
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    settings = [
        "init.samples=2", "init.resolution=32", "inversion.subset_epochs=1", "inversion.all_epochs=1",
        "inversion.resolution=32", "joint.iterations=3", "joint.resolution=32", "joint.ood_resolution=16",
        "inversion.samples_per_ray=6,6", "joint.samples_per_ray=6,6", "init.samples_per_ray=6,6",
    ]
    args = ["fit", str(photo), "--random-generator", "tiny", "--workdir", str(tmp_path / "work")]
    args += [a for s in settings for a in ("--set", s)]
    out = tmp_path / "scene.safetensors"
    assert main([*args, "--mask", str(tmp_path / "mask.png"), "-o", str(out)]) == 0
    scene = load_scene(out)
    assert scene.n_frames == 1 and scene.ood is not None and scene.source.transforms.shape == (1, 2, 3)
    assert scene.source.face_outlines.shape[:1] == (1,) and scene.source.frames == [0]
    assert "l2_ood" in scene.history["joint"][0] and "sparsity" in scene.history["joint"][0]
    assert scene.source.input.endswith("portrait.png")

    assert main([*args, "--set", "joint.iterationz=3"]) == 2
    assert "unknown setting 'joint.iterationz'" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "small.png"), mask[:100, :100])
    assert main([*args, "--mask", str(tmp_path / "small.png")]) == 2
    assert "must match the 512x512 crops" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "none.mp4"), *args[2:]]) == 2


def test_blend_terms_are_the_official_formulas_on_hand_computed_numbers():
    from innout.fit.losses import blend_area, blend_sparsity

    # 4 rays, 2 coarse then 2 fine samples each (Render.blend's order)
    blend = torch.tensor([[[0.0, 0.5, 1.0, 0.2], [0.0, 0.0, 0.0, 0.0], [0.3, 0.1, 0.4, 0.0], [1.0, 1.0, 1.0, 1.0]]])
    # coarse: mean of squared per-ray maxima = (0.25 + 0 + 0.09 + 1) / 4 = 0.335; fine: (1 + 0 + 0.16 + 1) / 4 = 0.54
    assert float(blend_area(blend, coarse=2)) == pytest.approx((0.335 + 0.54) / 2)
    # in-distribution rays 0 and 1: their mean b over all samples, 0.425 and 0, averaged
    assert float(blend_sparsity(blend, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))) == pytest.approx(0.2125)


def test_the_area_allowance_penalises_only_each_images_coverage_beyond_it():
    from innout.fit.losses import blend_area

    # 2 images of 2 rays, 1 coarse + 1 fine sample: image 0 covers (1 + 0.25) / 2 = 0.625 (coarse) and 0.5 (fine),
    # 0.5625 averaged; image 1 covers 0.08 (coarse: 0.16 / 2) and 0 (fine), 0.04 averaged
    blend = torch.tensor([[[1.0, 1.0], [0.5, 0.0]], [[0.4, 0.0], [0.0, 0.0]]])
    assert float(blend_area(blend, coarse=1)) == pytest.approx((0.5625 + 0.04) / 2)
    # allowed 0.5 and 0.1: only image 0's excess, 0.0625, counts, averaged over the 2 images
    assert float(blend_area(blend, coarse=1, allowance=torch.tensor([0.5, 0.1]))) == pytest.approx(0.0625 / 2)


def test_a_limited_term_trains_only_the_tensors_it_is_limited_to_and_the_rest_train_everything():
    from innout.fit.losses import backward_weighted

    a, b = torch.nn.Parameter(torch.tensor(2.0)), torch.nn.Parameter(torch.tensor(3.0))
    # x = a b (weight 1) trains a and b; y = (a b)^2 (weight 2) is limited to a: d/da 2 (a b)^2 = 4 a b^2 = 72
    result = backward_weighted({"x": (1.0, a * b), "y": (2.0, (a * b) ** 2)}, (("y",), [a]))
    assert float(a.grad) == 3.0 + 72.0 and float(b.grad) == 2.0
    assert result == {"loss": 6.0 + 72.0, "x": 6.0, "y": 36.0}
    a.grad = b.grad = None
    backward_weighted({"x": (1.0, a * b), "y": (2.0, (a * b) ** 2)})  # unlimited: both terms train both
    assert float(a.grad) == 75.0 and float(b.grad) == 2.0 + 4 * 2.0**2 * 3.0


def test_the_largest_blend_cross_entropy_on_hand_computed_numbers():
    from innout.fit.losses import largest_blend_cross_entropy

    # 2 rays of 3 samples: the masked ray's largest b is 0.5, the other's 0.9
    blend = torch.tensor([[[0.2, 0.5, 0.1], [0.9, 0.1, 0.0]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    expected = (-np.log(0.5) - np.log(1 - 0.9)) / 2
    assert float(largest_blend_cross_entropy(blend, mask)) == pytest.approx(expected, rel=1e-5)


def test_the_joint_stage_starts_from_the_official_reinitialised_canonical_code():
    from innout.fit.joint import reinit_canonical
    from innout.fit.latents import LatentCodes

    w = torch.randn(1, 14, 512)
    codes = LatentCodes(w, 3)
    reinit_canonical(codes, 0.3, seed=4)
    noise = torch.randn(1, 14, 512, generator=torch.Generator().manual_seed(4 + 7919))
    torch.testing.assert_close(codes.w_cano.detach(), 0.7 * w + 0.3 * noise)
    assert all(get_preset(p).joint.latent_lr > 0 for p in ("paper", "fast", "preview"))  # every preset trains w


def test_masked_inversion_ignores_the_ood_pixels():
    from innout.fit.losses import reconstruction_terms

    cfg = get_preset("preview").inversion
    image, target = torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128)
    target[..., :32] = 1.0  # the frames differ only in a strip on the left
    keep = torch.ones(1, 1, 128, 128)
    keep[..., :48] = 0  # ... which the mask says is the OOD object
    masked, plain = reconstruction_terms(image, target, cfg, keep), reconstruction_terms(image, target, cfg)
    assert float(masked["l2"][1]) == 0 and float(plain["l2"][1]) == pytest.approx(0.25)
    # LPIPS's deep features see across the mask's edge (the official masked LPIPS too): less, not nothing
    assert float(masked["lpips"][1]) < 0.6 * float(plain["lpips"][1])



def test_the_same_frames_with_other_masks_are_another_fit():
    """The stage caches' key carries the masks' content: a masked fit never reads an unmasked fit's stages."""
    targets = torch.zeros(2, 3, 8, 8)
    cameras = torch.zeros(2, 25)
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:4] = 1
    other = masks.clone()
    other[0, 0, 5, 5] = 1
    keys = {FitData(targets, cameras, key="clip", ood_masks=m).content_key() for m in (None, masks, other)}
    assert len(keys) == 3
    assert FitData(targets, cameras, key="clip", ood_masks=masks.clone()).content_key() in keys


def test_every_setting_says_what_it_does_in_one_line():
    """`--set help` prints every field of every group with a help text of one short line (the lab notes are in
    docs/settings.md, not in the help)."""
    import dataclasses

    from innout.settings import Settings, settings_help

    def fields(cfg):
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            yield cfg.key(f.name), f.metadata.get("help", "")
            if isinstance(value, Settings):
                yield from fields(value)

    helps = dict(fields(get_preset("paper")))
    assert len(helps) > 60 and all(0 < len(text) <= 110 and "\n" not in text for text in helps.values()), [
        k for k, text in helps.items() if not 0 < len(text) <= 110
    ]
    lines = settings_help(apply_overrides(get_preset("preview"), ["joint.iterations=7"]))
    assert "  joint.iterations=7  (an integer >= 0 and <= 10000000)  " in "\n".join(lines)
    assert sum(line.startswith("[") for line in lines) == 5  # the five groups


def test_set_help_on_the_command_line_needs_no_input(capsys):
    from innout.cli import main

    assert main(["fit", "--preset", "fast", "--set", "help", "--set", "joint.lr=0.001"]) == 0
    out = capsys.readouterr().out
    assert "settings of the 'fast' preset with your --set values" in out and "joint.lr=0.001" in out
    assert main(["fit", "--set", "joint.lr=0.001"]) == 2  # no input, no help: an error line
    assert "error: fit needs an INPUT" in capsys.readouterr().err


def test_a_fit_in_time_slices_ends_with_the_uninterrupted_fits_scene(tmp_path, grey_generator):
    """``time_budget``: once its budget is spent a slice writes a checkpoint at the step it is in and stops (here 0 s:
    one step per slice in each stage that keeps checkpoints), the same fit again continues, and the slices end with
    the scene of a straight run, bit for bit on a CPU."""
    from innout.fit import FitUnfinished, planned_steps, time_budget

    G = grey_generator
    data = make_synthetic_video(G, 2).fit_data()
    cfg = _tiny_config(iterations=6, sr_epochs=0)
    straight = load_scene(FitPipeline(G, data, cfg, tmp_path / "straight").run("innout"))
    stops = []
    for _ in range(30):
        try:
            with time_budget(0):
                out = FitPipeline(G, data, cfg, tmp_path / "slices").run("innout")
            break
        except FitUnfinished as unfinished:
            stops.append((unfinished.stage, unfinished.step))
    else:
        raise AssertionError(f"the slices never ended: {stops}")
    steps = planned_steps(cfg, 2)
    expected = [(stage, i) for stage in ("invert", "joint") for i in range(1, int(steps[stage]))]
    assert stops == expected, stops  # the stages that keep checkpoints stop after every step, the last one excepted
    sliced = load_scene(out)
    torch.testing.assert_close(sliced.ws, straight.ws, rtol=0, atol=0)
    for name, value in straight.ood.state_dict().items():
        torch.testing.assert_close(sliced.ood.state_dict()[name], value, rtol=0, atol=0)
    with time_budget(None):  # no budget: nothing stops (and the budget above did not outlive its block)
        FitPipeline(G, data, cfg, tmp_path / "slices").run("innout")
