"""Export: videos pasted back with audio, camera paths, meshes, and the render / mesh / directions CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from innout.edit.directions import Direction, latent_space_digest, save_direction
from innout.edit.smoothing import SuperresolutionHistory
from innout.eg3d.cameras import orbit_label
from innout.export import EXPORT_DEFAULTS, camera_path, export_camera_path, export_video
from innout.export.mesh import MeshError, extract_mesh, surface_level, write_glb, write_ply
from innout.export.video import default_face_mask
from innout.frames import iter_video
from innout.preprocess.pasteback import frame_mask
from innout.scene import RenderRequest, Scene, SceneData, SceneSource, save_scene
from innout.world.band import band_ood_field

from .conftest import requires
from .test_scene import band_scene_data

PREVIEW = dataclasses.replace(EXPORT_DEFAULTS, quality="preview")  # causal smoothing, as exports do
FPS, SECONDS, SIZE = 25, 10, (192, 144)  # the source clip: 250 frames of 192x144 with a 440 Hz tone


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def media_info(path) -> dict:
    """Frame count, fps, duration and whether there is an audio stream (ffmpeg's own report)."""
    import imageio_ffmpeg

    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    text = subprocess.run([ffmpeg(), "-i", str(path)], capture_output=True, text=True).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text).groups()
    fps = float(re.search(r"([\d.]+) fps", text).group(1))
    return {"frames": frames, "fps": fps, "duration": int(h) * 3600 + int(m) * 60 + float(s), "audio": "Audio:" in text}


@pytest.fixture(scope="module")
def source_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    cmd = [
        ffmpeg(), "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={SIZE[0]}x{SIZE[1]}:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", str(SECONDS),
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return path


def clip_scene(G, clip, n_frames: int, every: int = 1) -> Scene:
    """A scene over frames 0, every, 2*every, ... of the clip: one identity, slowly turning, the band as
    OOD object, each 512 crop mapped onto a 96 px square of the frame that drifts to the right."""
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), orbit_label(1.57, 1.57))
    ws = ws + 0.05 * torch.randn(n_frames, 1, 512, generator=torch.Generator().manual_seed(1))
    yaw = torch.linspace(-0.2, 0.2, n_frames)
    cameras = torch.cat([orbit_label(math.pi / 2 + float(a), math.pi / 2) for a in yaw])
    scale = 96 / 512
    transforms = torch.tensor([[[scale, 0.0, 30.0 + 0.2 * t], [0.0, scale, 20.0]] for t in range(n_frames)])
    source = SceneSource([t * every for t in range(n_frames)], transforms=transforms, input=str(clip), fps=FPS)
    data = SceneData(G, ws, cameras, band_ood_field(n_frames, resolution=32), source)
    return Scene(data)


@requires("imageio_ffmpeg")
def test_export_of_a_10s_clip_keeps_fps_frames_and_audio(tiny_generator, source_clip, tmp_path):
    n = FPS * SECONDS
    scene = clip_scene(tiny_generator, source_clip, n)
    calls = []
    out = export_video(
        scene, tmp_path / "edited.mp4", PREVIEW, lossless=True,
        progress=lambda stage, done, total, _: calls.append((stage, done, total)),
    )  # fmt: skip
    info = media_info(out)
    assert info["frames"] == n and info["fps"] == pytest.approx(FPS)
    assert info["audio"] and info["duration"] == pytest.approx(SECONDS, abs=0.15)
    assert calls[-1] == ("export", n, n)
    # outside the face mask the pasted frame is the original frame, pixel for pixel (lossless export)
    mask = default_face_mask()
    for t, (original, exported) in enumerate(zip(iter_video(source_clip), iter_video(out), strict=True)):
        if t % 60:
            continue
        outside = frame_mask(mask, scene.data.source.transforms[t].numpy(), original.shape[:2]) <= 0
        assert outside.mean() > 0.5
        assert np.array_equal(exported[outside], original[outside])
        assert np.abs(exported[~outside].astype(int) - original[~outside].astype(int)).mean() > 5  # a face is in


@requires("imageio_ffmpeg")
def test_export_of_every_other_frame_halves_the_frame_rate(tiny_generator, source_clip, tmp_path):
    scene = clip_scene(tiny_generator, source_clip, 20, every=2)  # frames 0, 2, ..., 38: 1.6 s
    out = export_video(scene, tmp_path / "half.mp4", PREVIEW)
    info = media_info(out)
    assert info["frames"] == 20 and info["fps"] == pytest.approx(FPS / 2)
    assert info["audio"] and info["duration"] == pytest.approx(1.6, abs=0.15)
    crops = export_video(scene, tmp_path / "crops.mp4", PREVIEW, paste=False, audio=False)
    info = media_info(crops)
    assert not info["audio"] and info["frames"] == 20


@requires("imageio_ffmpeg")
def test_a_causally_smoothed_export_smooths_the_first_sr_block_over_the_frames_in_order(
    tiny_generator, tmp_path, monkeypatch
):
    scene = Scene(band_scene_data(tiny_generator, n_frames=3))
    calls = []
    render = scene.render
    monkeypatch.setattr(scene, "render", lambda request, **kw: calls.append((request, kw)) or render(request, **kw))
    export_video(scene, tmp_path / "causal.mp4", PREVIEW, paste=False, audio=False)
    histories = {id(kw["sr_history"]) for _, kw in calls}
    assert [r.frame for r, _ in calls] == [0, 1, 2] and len(histories) == 1
    assert isinstance(calls[0][1]["sr_history"], SuperresolutionHistory)
    calls.clear()
    plain = dataclasses.replace(PREVIEW, smoothing="none")
    export_video(scene, tmp_path / "plain.mp4", plain, paste=False, audio=False)
    assert [kw["sr_history"] for _, kw in calls] == [None] * 3
    full = dataclasses.replace(EXPORT_DEFAULTS, quality="full")
    history = SuperresolutionHistory()
    in_order = [render(full.at(i), sr_history=history).image for i in range(3)]
    assert np.array_equal(in_order[0], render(full.at(0)).image) and len(history) == 3
    assert not np.array_equal(in_order[2], render(full.at(2)).image)


@requires("imageio_ffmpeg")
def test_sparse_frames_past_the_end_of_the_audio_keep_every_frame(tiny_generator, source_clip, tmp_path):
    # 4 frames 83 apart (a preview fit of a 250-frame clip): the last frame's slot outlasts the audio,
    # which must end early rather than cut the video
    scene = clip_scene(tiny_generator, source_clip, 4, every=83)
    info = media_info(export_video(scene, tmp_path / "sparse.mp4", PREVIEW))
    assert info["frames"] == 4 and info["audio"]


@requires("imageio_ffmpeg")
def test_export_of_a_variable_frame_rate_clip_keeps_its_frames_and_duration(tiny_generator, tmp_path):
    # 30 fps test pattern with a tone; frames 0-9, then every 8th up to 2.5 s, each at its own time: 19 frames
    # over about 2.6 s, which ffmpeg's default constant-rate reading turns into ~78 (4x too long an export)
    clip = tmp_path / "vfr.mp4"
    select = "select='lt(n\\,10)+gte(n\\,10)*lt(n\\,75)*not(mod(n-10\\,8))'"
    cmd = [
        ffmpeg(), "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={SIZE[0]}x{SIZE[1]}:rate=30:duration=2.6",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=2.6", "-vf", select,
        "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    times = [n / 30 for n in range(75) if n < 10 or (n - 10) % 8 == 0]
    import imageio_ffmpeg

    from innout.export.video import source_timing

    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(clip))  # ffmpeg's own count of the clip
    timing = source_timing(clip)
    assert frames == len(times) == len(timing.times) and timing.variable
    np.testing.assert_allclose(timing.times, times, atol=1e-4)
    assert timing.duration == pytest.approx(seconds, abs=0.02)
    scene = clip_scene(tiny_generator, clip, len(times))
    info = media_info(export_video(scene, tmp_path / "edited.mp4", PREVIEW))
    assert info["frames"] == len(times) and info["fps"] == pytest.approx(len(times) / seconds, rel=0.02)
    assert info["audio"] and info["duration"] == pytest.approx(seconds, abs=0.15)


@requires("imageio_ffmpeg")
def test_export_needs_the_source_to_paste(tiny_generator, source_clip, tmp_path):
    from innout.frames import FramesError

    scene = clip_scene(tiny_generator, tmp_path / "moved.mp4", 3)
    with pytest.raises(FramesError, match="cannot paste back"):
        export_video(scene, tmp_path / "x.mp4")
    out = export_video(scene, tmp_path / "x.mp4", PREVIEW, source=source_clip)
    assert media_info(out)["frames"] == 3


@requires("imageio_ffmpeg")
def test_camera_path_video_reuses_one_set_of_planes(tiny_generator, tmp_path):
    scene = Scene(band_scene_data(tiny_generator))
    views = camera_path("orbit", 8)
    assert views[0] == pytest.approx((0.0, 0.15)) and max(abs(y) for y, _ in views) == pytest.approx(0.35, abs=0.02)
    assert all(p == 0 for _, p in camera_path("yaw-sweep", 4))
    out = export_camera_path(scene, tmp_path / "orbit.mp4", 1, views, PREVIEW)
    assert media_info(out)["frames"] == 8
    assert scene.backbone_runs == 1
    with pytest.raises(ValueError):
        camera_path("spiral", 4)


def read_glb(path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    magic, version, total = struct.unpack("<III", data[:12])
    assert magic == 0x46546C67 and version == 2 and total == len(data)
    json_len, json_type = struct.unpack("<II", data[12:20])
    assert json_type == 0x4E4F534A
    document = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack("<II", data[20 + json_len : 28 + json_len])
    assert bin_type == 0x004E4942
    return document, data[28 + json_len : 28 + json_len + bin_len]


def test_mesh_has_face_and_ood_parts(tiny_generator, tmp_path):
    scene = Scene(band_scene_data(tiny_generator))
    mesh = extract_mesh(scene, 0, resolution=48, level=1.25)  # the random face is a fog of density ~1.2
    assert len(mesh.faces) > 100
    band = mesh.vertices[mesh.part == 1]
    assert len(band) > 20 and (mesh.part == 0).sum() > 20
    # the OOD part is the band: in front of the face (z > 0.1), at eye height
    assert band[:, 2].min() > 0.08 and 0.0 < np.median(band[:, 1]) < 0.14
    assert (mesh.colours[mesh.part == 1, 0] > 200).mean() > 0.9  # red
    document, binary = read_glb(write_glb(mesh, tmp_path / "scene.glb"))
    assert [m["name"] for m in document["meshes"]] == ["face", "ood"]
    for view in document["bufferViews"]:
        assert view["byteOffset"] + view["byteLength"] <= len(binary)
    positions = document["accessors"][document["meshes"][1]["primitives"][0]["attributes"]["POSITION"]]
    assert positions["min"][2] > 0.08
    header = write_ply(mesh, tmp_path / "scene.ply").read_bytes()[:400].decode("ascii", "ignore")
    assert f"element vertex {len(mesh.vertices)}" in header and "property uchar part" in header
    removed = extract_mesh(scene, 0, resolution=48, level=1.25, remove_ood=True)
    assert removed.part.sum() == 0
    with pytest.raises(ValueError, match="never crosses"):
        extract_mesh(scene, 0, resolution=16, level=1e6)


@pytest.fixture
def scene_file(tiny_generator, tmp_path):
    return save_scene(band_scene_data(tiny_generator), tmp_path / "scene.safetensors")


@requires("imageio_ffmpeg")
def test_cli_render_mesh_and_directions(tiny_generator, scene_file, tmp_path, capsys):
    import imageio.v3 as iio

    from innout.cli import main

    direction = Direction("smile", torch.randn(512), scale=3.0, latent_space=latent_space_digest(tiny_generator))
    save_direction(direction, tmp_path / "dirs" / "smile.safetensors")
    common = [str(scene_file), "--directions", str(tmp_path / "dirs")]
    assert main(["render", *common, "-o", str(tmp_path / "a.png"), "--frame", "1"]) == 0
    assert main([
        "render", *common, "-o", str(tmp_path / "b.png"), "--frame", "1", "--edit", "smile=2", "--remove-ood",
        "--depth", str(tmp_path / "d.png"), "--blend", str(tmp_path / "m.png"), "--camera", "10,-5",
    ]) == 0  # fmt: skip
    a, b = iio.imread(tmp_path / "a.png"), iio.imread(tmp_path / "b.png")
    assert a.shape == (512, 512, 3) and np.abs(a.astype(int) - b.astype(int)).mean() > 1
    assert iio.imread(tmp_path / "d.png").ndim == 2 and iio.imread(tmp_path / "m.png").max() == 0  # removed
    orbit = ["-o", str(tmp_path / "o.mp4"), "--orbit", "--views", "3", "--quality", "preview"]
    assert main(["render", *common, *orbit]) == 0
    assert media_info(tmp_path / "o.mp4")["frames"] == 3
    assert main(["mesh", str(scene_file), "-o", str(tmp_path / "s.glb"), "--resolution", "32", "--level", "5"]) == 0
    assert read_glb(tmp_path / "s.glb")[0]["meshes"]
    assert main(["directions", "show", str(tmp_path / "dirs")]) == 0
    assert "smile: range -3..3" in capsys.readouterr().out
    # errors are one readable line and exit code 2
    assert main(["render", *common, "-o", str(tmp_path / "c.png"), "--edit", "age=1"]) == 2
    assert "unknown edit(s) age; available: smile" in capsys.readouterr().err
    assert main(["render", *common, "-o", str(tmp_path / "c.png"), "--frame", "7"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["render", *common, "-o", str(tmp_path / "c.gif")]) == 2
    assert main(["render", str(tmp_path / "dirs" / "smile.safetensors"), "-o", str(tmp_path / "c.png")]) == 2
    assert "not an In-N-Out scene" in capsys.readouterr().err


def test_every_render_flag_is_in_the_help_and_the_cli_docs():
    from pathlib import Path

    from innout.cli import build_parser

    cli_docs = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    directions = commands["directions"]._subparsers._group_actions[0].choices
    for name, sub in [("render", commands["render"]), ("mesh", commands["mesh"]), *directions.items()]:
        help_text = sub.format_help()
        for action in sub._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert flag in help_text, (name, flag)
                assert f"`{flag}" in cli_docs or f"{flag} " in cli_docs or f"{flag}`" in cli_docs, (name, flag)


def test_cli_render_with_a_removal_mask(scene_file, tmp_path):
    """`render --remove-ood --removal mask --removal-mask m.png`: only the masked part of the object goes."""
    import imageio.v3 as iio

    from innout.cli import main
    from innout.images import save_image

    mask = np.zeros((512, 512), np.uint8)
    mask[:, :200] = 255  # the left part of the crop
    save_image(mask, tmp_path / "m.png")
    common = [str(scene_file), "--frame", "1", "--quality", "preview", "--device", "cpu"]
    assert main(["render", *common, "-o", str(tmp_path / "kept.png"), "--blend", str(tmp_path / "kept_b.png")]) == 0
    assert main([
        "render", *common, "--remove-ood", "--removal", "mask", "--removal-mask", str(tmp_path / "m.png"),
        "-o", str(tmp_path / "half.png"), "--blend", str(tmp_path / "half_b.png"),
    ]) == 0  # fmt: skip
    kept, half = iio.imread(tmp_path / "kept_b.png") > 127, iio.imread(tmp_path / "half_b.png") > 127
    cols = np.arange(kept.shape[1])[None, :].repeat(kept.shape[0], 0)
    left, right = kept & (cols < kept.shape[1] * 0.3), kept & (cols > kept.shape[1] * 0.6)
    assert left.any() and right.any()
    assert not half[left].any() and half[right].all()


@requires("mediapipe", "imageio_ffmpeg")
def test_export_without_the_preprocessing_cache_uses_the_face_outline(tiny_generator, tmp_path, monkeypatch, caplog):
    """The scene file is self-contained: with the preprocessing cache deleted, the paste-back mask is still
    the face-mesh outline of each frame (not the default ellipse), and outside it the frame is untouched."""
    import shutil

    from innout.export.video import scene_face_masks
    from innout.fit import fit_video
    from innout.preprocess import PrepareOptions, prepare
    from innout.preprocess.pasteback import face_mask

    from .test_fit import _tiny_config

    monkeypatch.setenv("INNOUT_CACHE_DIR", str(tmp_path / "cache"))
    clip = Path(__file__).resolve().parent.parent / "assets" / "examples" / "lp_d19_eyeglasses_talking.mp4"
    options = PrepareOptions(max_frames=3)
    prepared = prepare(clip, options, progress=False)
    expected = [face_mask(lm) for lm in prepared.landmarks]
    path = fit_video(clip, tiny_generator, _tiny_config(iterations=2, sr_epochs=0), prepare_options=options,
                     output=tmp_path / "scene.safetensors", workdir=tmp_path / "work", log=lambda *_: None)  # fmt: skip
    shutil.rmtree(tmp_path / "cache" / "prepare")
    scene = Scene.load(path)
    masks = scene_face_masks(scene)
    assert len(masks) == 3
    for got, want in zip(masks, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert np.abs(got - default_face_mask()).mean() > 0.01  # not the ellipse
    out = export_video(scene, tmp_path / "out.mp4", PREVIEW, lossless=True)
    assert "default face mask" not in caplog.text
    for t, (original, exported) in enumerate(zip(iter_video(clip), iter_video(out), strict=False)):
        outside = frame_mask(masks[t], scene.data.source.transforms[t].numpy(), original.shape[:2]) <= 0
        assert np.array_equal(exported[outside], original[outside])


def test_mesh_resolution_is_bounded_before_anything_is_allocated(tmp_path, capsys):
    from innout.cli import main
    from innout.cli.scene import MESH_RESOLUTION
    from innout.export.mesh import MAX_MESH_RESOLUTION, MIN_MESH_RESOLUTION, MeshError
    from tests.hostile.files import micro_scene

    assert (MESH_RESOLUTION.lo, MESH_RESOLUTION.hi) == (MIN_MESH_RESOLUTION, MAX_MESH_RESOLUTION) == (8, 512)
    scene = Scene.load(micro_scene(tmp_path))
    for resolution in (4000, 7, 0, -5, 12.5, True):
        with pytest.raises(MeshError, match="must be a whole number from 8 to 512"):
            extract_mesh(scene, 0, resolution=resolution, level=0.5)
    assert scene.backbone_runs == 0  # refused before the tri-planes were even made
    out = tmp_path / "mesh.glb"
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["mesh", str(tmp_path / "scene.safetensors"), "-o", str(out), "--resolution", "4000"])
    assert exited.value.code == 2
    assert "--resolution: must be an integer >= 8 and <= 512, got '4000'" in capsys.readouterr().err
    assert not out.exists()


def test_mesh_is_the_same_in_any_chunking(tiny_generator):
    scene = Scene(band_scene_data(tiny_generator))
    whole = extract_mesh(scene, 0, resolution=24, level=1.25)
    chunked = extract_mesh(scene, 0, resolution=24, level=1.25, chunk=1000)
    np.testing.assert_array_equal(whole.faces, chunked.faces)
    np.testing.assert_allclose(whole.vertices, chunked.vertices, atol=1e-5)
    np.testing.assert_array_equal(whole.part, chunked.part)
    assert np.abs(whole.colours.astype(int) - chunked.colours.astype(int)).max() <= 1


def test_surface_level_is_midway_to_the_density_where_a_frontal_ray_turns_half_opaque():
    volume = np.zeros((4, 4, 10), np.float32)
    volume[:, :, 3:7] = 5.0  # a solid slab, empty in front (z 7-9: the camera looks from +z): optical depth
    volume[0, 0, :] = 0.0  # 0.5, 1.0 (>= ln 2) at spacing 0.1. One empty ray: left out of the median
    volume[1, 1, 3:7] = 20.0  # one denser ray: opaque at its first sample (optical depth 2.0)
    assert surface_level(volume, spacing=0.1) == pytest.approx(2.5)  # median of {(5 + 0) / 2 x 14, 10}
    fog = volume + 1.0  # a floor of 1 everywhere: midway between 1 (in front) and 6
    assert surface_level(fog, spacing=0.1) == pytest.approx(3.5)
    with pytest.raises(MeshError, match="nowhere opaque.*0.39"):
        surface_level(np.full((2, 2, 5), 1.0, np.float32), spacing=0.1)  # 1 - exp(-0.5) = 0.39


def test_mesh_level_defaults_to_the_fitted_density(tiny_generator):
    scene = Scene(band_scene_data(tiny_generator))
    mesh = extract_mesh(scene, 0, resolution=32)
    assert len(mesh.faces) > 100 and 0 < mesh.level < 10  # EG3D's 10 is never crossed by this field


def test_every_source_frame_interpolates_the_frames_between_fitted_ones(tiny_generator):
    from types import SimpleNamespace

    from innout.export.dense import DenseError, every_source_frame, in_between

    before, after, weight = in_between([0, 4, 8], [0, 1, 4, 6, 8])
    assert before.tolist() == [0, 0, 1, 1, 2] and after.tolist() == [0, 1, 1, 2, 2]
    np.testing.assert_allclose(weight, [0, 0.25, 0, 0.5, 0])

    data = band_scene_data(tiny_generator, n_frames=3, source=SceneSource([0, 4, 8]))
    data.ood.codes.data = torch.randn_like(data.ood.codes)
    scene = Scene(data)
    frames = list(range(10))  # the prepared clip: frames 0-9, the fit kept 0, 4 and 8
    prepared = SimpleNamespace(
        frame_indices=frames, cameras=np.stack([np.full(25, f, np.float32) for f in frames]),
        transforms=np.stack([np.eye(2, 3) * (f + 1) for f in frames]),
        face_outlines=lambda: np.stack([np.full((4, 2), f, np.float32) for f in frames]),
        source="", fps=25.0, frame_size=(8, 8),
    )  # fmt: skip
    dense = every_source_frame(scene, prepared)
    assert dense.data.source.frames == list(range(9)) and dense.n_frames == 9  # frame 9 is past the last fitted
    torch.testing.assert_close(dense.data.ws[4], data.ws[1])  # fitted frames as fitted
    torch.testing.assert_close(dense.data.ws[6], (data.ws[1] + data.ws[2]) / 2)
    torch.testing.assert_close(dense.data.ood.codes[1], 0.75 * data.ood.codes[0] + 0.25 * data.ood.codes[1])
    assert dense.data.cameras[6, 0] == 6 and dense.data.source.transforms[6, 0, 0] == 7  # the clip's own
    assert dense.data.source.face_outlines[6, 0, 0] == 6
    assert dense.render(RenderRequest(6, quality="preview")).image.shape[-1] == 3
    assert every_source_frame(Scene(band_scene_data(tiny_generator, 2)), SimpleNamespace(
        frame_indices=[0, 1], cameras=None, transforms=None, face_outlines=None)).n_frames == 2  # nothing to add
    prepared.frame_indices = [f + 1 for f in frames]  # another clip
    with pytest.raises(DenseError, match="not the clip this scene was fitted on"):
        every_source_frame(scene, prepared)


def test_a_glb_shows_its_vertex_colours_and_says_what_it_holds(tmp_path):
    """The .glb's material is matte and unlit (glTF's default is fully metallic: viewers mirrored their
    environment, the head showed blue, green and violet), its colours are linear as glTF wants, and the counts the
    page reports are the file's (a vertex on both parts is in both)."""
    import json
    import struct

    from innout.export.mesh import Mesh, srgb_to_linear, write_glb

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    colours = np.array([[255, 200, 160], [128, 128, 128], [0, 0, 0], [255, 255, 255]], np.uint8)
    mesh = Mesh(vertices, faces, colours, part=np.array([0, 0, 1, 1], np.uint8))
    data = write_glb(mesh, tmp_path / "m.glb").read_bytes()
    (length,) = struct.unpack("<I", data[12:16])
    document = json.loads(data[20 : 20 + length])
    (material,) = document["materials"]
    assert material["pbrMetallicRoughness"]["metallicFactor"] == 0 and "KHR_materials_unlit" in material["extensions"]
    assert all(p["material"] == 0 for m in document["meshes"] for p in m["primitives"])
    np.testing.assert_allclose(srgb_to_linear(np.array([[0, 128, 255]], np.uint8)), [[0, 0.2158605, 1]], atol=1e-6)
    counts = mesh.counts()
    written = {m["name"]: document["accessors"][m["primitives"][0]["attributes"]["POSITION"]]["count"]
               for m in document["meshes"]}  # fmt: skip
    assert written == {"face": counts["face_vertices"], "ood": counts["ood_vertices"]} == {"face": 3, "ood": 3}


def test_stray_pieces_leave_the_mesh():
    """Specks (tiny pieces) and a slab lying on a face of the box go; the head-sized piece and a separate object
    (glasses in front of it) stay."""
    from innout.export.mesh import Mesh, without_stray_pieces

    def sheet(x0, y0, z, n, size):  # an n x n grid of quads: 2 n^2 triangles
        xs, ys = np.meshgrid(np.linspace(x0, x0 + size, n + 1), np.linspace(y0, y0 + size, n + 1))
        v = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)], 1)
        idx = np.arange(v.shape[0]).reshape(n + 1, n + 1)
        a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        return v, np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])

    pieces = [sheet(-0.2, -0.2, 0.0, 20, 0.4), sheet(-0.1, 0.0, 0.2, 8, 0.2),  # a head, and glasses before it
              sheet(-0.3, -0.3, 0.499, 10, 0.6), sheet(0.3, -0.45, 0.1, 1, 0.01)]  # a slab at z = +half, a speck
    vertices, faces, offset = [], [], 0
    for v, f in pieces:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    vertices = np.concatenate(vertices).astype(np.float32)
    blank = np.zeros((len(vertices), 3), np.uint8)
    mesh = Mesh(vertices, np.concatenate(faces), blank, np.zeros(len(vertices), np.uint8))
    clean = without_stray_pieces(mesh, half=0.5, grid=128)
    assert len(clean.faces) == 2 * 20 * 20 + 2 * 8 * 8  # the head and the glasses
    assert clean.vertices[:, 2].max() <= 0.2 + 1e-6 and len(clean.vertices) == 21 * 21 + 9 * 9
