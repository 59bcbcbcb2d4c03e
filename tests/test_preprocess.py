"""Preprocessing: crops, cameras, tracking, gaps, cache, paste-back and bad input (synthetic data first)."""

# ruff: noqa: E402 - the optional packages are checked before the modules that need them are imported
from __future__ import annotations

import pytest

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video tests need imageio-ffmpeg (requirements.txt)")

import math
import subprocess

import cv2
import numpy as np
import torch
from skimage import data as skdata

from innout.cli import main
from innout.eg3d import cameras as eg3d_cameras
from innout.preprocess import (
    InputError,
    NoFaceError,
    PrepareOptions,
    align,
    align_image,
    camera,
    face_mask,
    load_media,
    paste_back,
    pipeline,
    prepare,
)
from innout.preprocess.landmarks import FaceMeshTracker
from innout.preprocess.pasteback import frame_mask
from innout.preprocess.smoothing import fill_gaps, gaussian_smooth

from .conftest import shared_path


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """The public-domain astronaut portrait, face in the upper middle, 512x512."""
    return skdata.astronaut()


def write_video(path, frames, fps=10.0, audio=None):
    h, w = frames[0].shape[:2]
    kwargs = {"audio_path": str(audio), "audio_codec": "aac"} if audio else {}
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, quality=8, **kwargs)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()


def sine_wav(path, seconds=2.0):
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
    ]
    subprocess.run([*cmd, str(path)], check=True)


def shifted(image, dx, dy, scale=1.0):
    h, w = image.shape[:2]
    m = np.array([[scale, 0, dx], [0, scale, dy]], np.float32)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


# --- geometry -------------------------------------------------------------------------------------


def test_frontal_rotation_gives_eg3d_frontal_camera():
    label = camera.camera_label(np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(label, eg3d_cameras.frontal_label()[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, -10, 5), (-35, 15, -8)])
def test_head_rotation_recovers_a_known_pose(yaw, pitch, roll):
    model = camera.canonical_face()
    rot_world = cv2.Rodrigues(np.radians([pitch, 0, 0]))[0] @ cv2.Rodrigues(np.radians([0, yaw, 0]))[0]
    rot_world = cv2.Rodrigues(np.radians([0, 0, roll]))[0] @ rot_world
    world_to_camera = np.diag([1.0, -1.0, -1.0]) @ rot_world  # a frontal camera, then the head turned
    projected = 40 * (model @ world_to_camera.T) + [256, 256, 0]
    rng = np.random.default_rng(0)
    projected[:, :2] += rng.normal(0, 0.3, (len(model), 2))  # landmark noise, pixels
    estimate = camera.head_rotation(projected)
    delta = estimate @ world_to_camera.T
    assert math.degrees(math.acos(np.clip((np.trace(delta) - 1) / 2, -1, 1))) < 0.5
    label = camera.camera_label(estimate)
    c2w = label[:16].reshape(4, 4)
    assert np.linalg.norm(c2w[:3, 3]) == pytest.approx(2.7, abs=1e-4)
    np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-5)
    assert label[16] == pytest.approx(4.2647, abs=1e-4) and label[18] == 0.5


def test_pos_fit_and_crop_transform_are_consistent():
    # five points made from the standard 3D landmarks: scale 40 px/unit, face centred at (300, 220)
    pts = align.STANDARD_5[:, :2] * [40, -40] + [300, 220]
    t, s = align.pos_scale_translation(pts, 480)
    assert s == pytest.approx(40, rel=1e-6)
    assert t == pytest.approx([300 - 40 * align.STANDARD_5[:, 0].mean() * 0, 480 - 1 - 220], abs=2)
    m = align.crop_transform(pts, 640, 480)
    assert m[0, 1] == m[1, 0] == 0 and m[0, 0] == pytest.approx(m[1, 1], rel=1e-2)
    # the official scale: 300 / s image pixels per canvas pixel, 700 canvas pixels per 512 crop pixels
    assert m[0, 0] == pytest.approx(s / 300 * 700 / 512, rel=1e-2)
    inv = align.invert_affine(m)
    np.testing.assert_allclose(align.apply_affine(m, align.apply_affine(inv, pts)), pts, atol=1e-9)


def test_smoothing_and_gap_filling():
    values = np.arange(20, dtype=float)[:, None] * [1.0, 2.0]
    valid = np.ones(20, bool)
    valid[5:8] = False
    valid[12:19] = False
    filled, missing, idx = fill_gaps(values * valid[:, None], valid, max_gap=4)
    np.testing.assert_allclose(filled[5:8], values[5:8])
    assert idx == [5, 6, 7] and missing[12:19].all() and not missing[:12].any()
    ramp = gaussian_smooth(values, sigma=2.0)
    np.testing.assert_allclose(ramp[6:14], values[6:14], atol=1e-9)  # zero lag on a ramp
    step = np.r_[np.zeros(10), np.ones(10)][:, None]
    smooth = gaussian_smooth(step, 1.5)
    assert smooth[9, 0] == pytest.approx(1 - smooth[10, 0], abs=1e-9)  # symmetric around the edge
    assert gaussian_smooth(values[:3], 5.0).shape == (3, 2)


# --- single images ------------------------------------------------------------------------------


def test_align_image(portrait):
    face = align_image(portrait)
    assert face.crop.shape == (512, 512, 3) and face.crop.dtype == np.uint8
    assert face.camera.shape == (25,) and face.landmarks.shape == (468, 2)
    eyes = align.five_points(np.c_[face.landmarks, np.zeros(468)])[:2]
    # EG3D/FFHQ framing: eyes level with the upper middle, about a quarter of the crop apart
    # (136 px in the official crop eg3dproj_ffhq_00018)
    assert 200 < eyes[:, 0].mean() < 312 and 180 < eyes[:, 1].mean() < 300
    assert 100 < np.linalg.norm(eyes[0] - eyes[1]) < 170
    back = align.apply_affine(face.transform, face.landmarks)
    np.testing.assert_allclose(back, face.landmarks_image[:, :2], atol=1e-6)
    with pytest.raises(NoFaceError, match="no face"):
        align_image(np.full((256, 256, 3), 90, np.uint8))


def test_paste_back_round_trip(portrait):
    face = align_image(portrait)
    mask = face_mask(face.landmarks)
    pasted = paste_back(portrait, face.crop, face.transform, mask)
    inside = frame_mask(mask, face.transform, portrait.shape[:2]) > 0.5
    err = (pasted.astype(float) - portrait)[inside]
    assert 10 * np.log10(255**2 / np.mean(err**2)) >= 35
    outside = frame_mask(mask, face.transform, portrait.shape[:2]) <= 0
    assert outside.mean() > 0.3 and np.array_equal(pasted[outside], portrait[outside])
    edited = np.zeros_like(face.crop)
    blended = paste_back(portrait, edited, face.transform, mask)
    assert blended[inside].mean() < 20 and np.array_equal(blended[outside], portrait[outside])


# --- videos -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_video(portrait, tmp_path_factory):
    """16 frames of the portrait drifting, frames 6-7 blank (no face), with a 2 s audio track."""
    folder = tmp_path_factory.mktemp("video")
    small = cv2.resize(portrait, (256, 256), interpolation=cv2.INTER_AREA)
    frames = [shifted(small, 2 * i - 10, i - 6) for i in range(16)]
    for i in (6, 7):
        frames[i] = np.full_like(small, 90)
    sine_wav(folder / "tone.wav")
    write_video(folder / "clip.mp4", frames, fps=8.0, audio=folder / "tone.wav")
    return folder / "clip.mp4"


def test_prepare_video_fills_gaps_keeps_fps_and_audio_and_caches(synthetic_video, tmp_path, monkeypatch):
    pv = prepare(synthetic_video, cache_dir=tmp_path, progress=False)
    assert len(pv) == 16 and pv.fps == pytest.approx(8.0) and pv.frame_size == (256, 256)
    assert [pv.frame_indices[i] for i, s in enumerate(pv.status) if s == "interpolated"] == [6, 7]
    assert pv.audio_path is not None and "filled by interpolation: frames 6-7" in pv.report()
    assert pv.cameras.shape == (16, 25) and pv.crops.shape == (16, 512, 512, 3)
    assert pv.jitter["smoothed"] <= pv.jitter["raw"] + 1e-6

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(pipeline, "process_media", boom)
    monkeypatch.setattr(pipeline, "load_media", boom)  # a cache hit does not decode the video either
    monkeypatch.setattr(pipeline, "open_media", boom)
    again = prepare(synthetic_video, cache_dir=tmp_path, progress=False)
    assert again.cache_dir == pv.cache_dir
    np.testing.assert_array_equal(again.cameras, pv.cameras)
    with pytest.raises(AssertionError, match="recomputed"):
        prepare(synthetic_video, PrepareOptions(landmark_smoothing=0), cache_dir=tmp_path, progress=False)


def test_prepare_stride_and_cap(synthetic_video, tmp_path):
    pv = prepare(synthetic_video, PrepareOptions(stride=2, max_frames=5, max_gap=2), cache_dir=tmp_path, progress=False)
    assert pv.frame_indices == [0, 2, 4, 6, 8] and pv.fps == pytest.approx(4.0)


def test_cli_prepare(synthetic_video, tmp_path):
    out = tmp_path / "out"
    assert main(["prepare", str(synthetic_video), str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    import json

    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert len(labels) == 16 and labels[0][0] == "img00000000.png" and len(labels[0][1]) == 25
    assert len(list((out / "frames").glob("*.png"))) == 16
    assert (out / "audio.mka").is_file()
    reader = imageio_ffmpeg.read_frames(str(out / "preview.mp4"))
    meta = next(reader)
    assert meta["size"] == (512, 512) and sum(1 for _ in reader) == 16


def test_main_face_is_tracked_when_another_appears(portrait):
    small = cv2.resize(portrait, (200, 200), interpolation=cv2.INTER_AREA)
    big = cv2.resize(portrait, (300, 300), interpolation=cv2.INTER_AREA)
    centres = []
    with FaceMeshTracker(video=True) as tracker:
        for i in range(6):
            canvas = np.full((320, 640, 3), 60, np.uint8)
            canvas[60:260, 20:220] = small
            if i >= 3:  # a bigger face enters on the right
                canvas[10:310, 330:630] = big
            lm = tracker(canvas)
            centres.append(lm[:, 0].mean())
    assert max(centres) < 220  # stayed on the first (left) face


def test_bad_inputs(tmp_path, synthetic_video):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(InputError, match="not a readable video"):
        prepare(fake, cache_dir=tmp_path / "c", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        load_media(tmp_path / "empty")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(synthetic_video.read_bytes()[:2000])
    with pytest.raises(InputError):
        prepare(truncated, cache_dir=tmp_path / "c", progress=False)
    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((128, 128, 3), 80, np.uint8)] * 5)
    with pytest.raises(NoFaceError, match="no face found in any frame; frames without a face: 0-4") as info:
        prepare(blank, cache_dir=tmp_path / "c", progress=False)
    assert info.value.frames == [0, 1, 2, 3, 4]
    left = [p.name for p in (tmp_path / "c").iterdir()] if (tmp_path / "c").exists() else []
    assert all(name.endswith(".lock") for name in left)  # nothing half-written (the entry's lock file may stay)
    assert main(["prepare", str(fake), str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]) == 2


# --- shared real data ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eg3dproj_ffhq_00018", "hfgi3d_00001"])
def test_cameras_close_to_official(name):
    from innout.frames import read_frames

    image = read_frames(shared_path("data", "images", f"{name}.png"))[0]
    official = np.load(shared_path("data", "images", "cameras", f"{name}.npy")).reshape(-1)
    face = align_image(image)
    # the issue asks <= 5 degrees; measured 4.5 and 0.4 (68-point-layout pose fit)
    assert camera.angle_between_cameras(face.camera, official) <= 5.0
    # already aligned by EG3D's pipeline: our crop is within a few pixels of identity
    # (measured with MTCNN's points: centre 1.1 / 3.4 px, scale 1.001 / 1.028)
    corners = np.array([[0, 0, 1], [511, 0, 1], [0, 511, 1], [511, 511, 1], [255.5, 255.5, 1]], float)
    assert np.abs(corners @ face.transform.T - corners[:, :2])[-1].max() < 5.0
    assert face.transform[0, 0] == pytest.approx(1.0, abs=0.04)


def test_real_clip():
    pv = prepare(shared_path("data", "videos", "inno_blue_facepaint_mask.mp4"), use_cache=False, progress=False)
    assert pv.status.count("detected") / (len(pv) + len(pv.dropped)) >= 0.95
    assert pv.jitter["smoothed"] < 2.0
    assert pv.mtcnn_frames >= 0.9 * len(pv)  # MTCNN frames the crop on (nearly) every frame


@pytest.mark.slow
@pytest.mark.parametrize(
    "clip",
    [
        "inno_big_sunglasses.mp4",
        "inno_eyeglasses_yaw.mp4",
        "inno_rednose_clown_nose.mp4",
        "lp_d18_clean_talking.mp4",
        "lp_d19_eyeglasses_talking.mp4",
    ],
)
def test_all_real_clips(clip, tmp_path):
    pv = prepare(shared_path("data", "videos", clip), cache_dir=tmp_path, progress=False)
    assert pv.status.count("detected") / (len(pv) + len(pv.dropped)) >= 0.95


def test_eg3d_label_round_trip_through_renderer_camera():
    # a label from the pose solver feeds EG3D's ray sampler as is (shape, dtype, focal)
    label = torch.from_numpy(camera.camera_label(np.diag([1.0, -1.0, -1.0])))[None]
    origins, dirs = eg3d_cameras.camera_rays(label, 8)
    assert origins.shape == (1, 64, 3) and torch.isfinite(dirs).all()


# --- streaming, frame timing, image kinds and option checks ---------------------------------------


def test_prepare_streams_the_crops_to_disk_with_the_in_memory_result(synthetic_video, tmp_path):
    from innout.preprocess.media import open_media

    pv = prepare(synthetic_video, cache_dir=tmp_path, progress=False)
    assert isinstance(pv.crops, np.memmap)  # written frame by frame into the entry, never held whole
    assert not list(tmp_path.glob("*.tmp-*"))  # the crops file was moved into the entry
    in_memory = pipeline.process_media(open_media(synthetic_video), PrepareOptions(), progress=False)
    assert not isinstance(in_memory.crops, np.memmap)
    np.testing.assert_array_equal(in_memory.crops, pv.crops)
    np.testing.assert_array_equal(in_memory.cameras, pv.cameras)
    assert in_memory.frame_indices == pv.frame_indices and in_memory.timestamps == pv.timestamps
    assert pv.timestamps == pytest.approx([i / 8 for i in range(16)])


STREAM_CHECK = """
from innout.runtime import peak_memory_mb
from innout.preprocess.media import open_media
media = open_media({clip!r})
before = peak_memory_mb()
count = sum(1 for _ in media.frames())
after = peak_memory_mb()
print(count, after - before)
"""


def test_video_is_decoded_as_a_stream_in_bounded_memory(tmp_path):
    from innout.bench.processes import peak_rss_mb

    from .conftest import write_test_clip

    frames, size = 90, 640  # 90 frames of 640x640: 105 MB if held whole
    clip = write_test_clip(tmp_path / "clip.mp4", frames, size)
    _, last = peak_rss_mb(STREAM_CHECK.format(clip=str(clip)), timeout=300)
    count, grown = last.split()
    assert int(count) == frames
    assert float(grown) < 0.15 * frames * size * size * 3 / 2**20  # a handful of frames at most, never the clip


def test_variable_frame_rate_clip_keeps_its_frames_and_times(tmp_path):
    from innout.preprocess.media import open_media
    from tests.hostile.inputs import vfr_clip

    clip = tmp_path / "vfr.mp4"
    times = vfr_clip(clip, size=192, burst=4, every=10, frames=60)  # 4 frames at 30 fps, then one per 1/3 s
    _, seconds = imageio_ffmpeg.count_frames_and_secs(str(clip))
    media = load_media(clip)
    assert media.frame_indices == list(range(len(times))) == list(range(10))
    assert media.timestamps == pytest.approx(times, abs=1e-4)
    assert len(media.frames) / media.fps == pytest.approx(seconds, abs=0.02)  # frames / duration
    strided = open_media(clip, stride=2)
    assert strided.fps == pytest.approx(media.fps / 2) and strided.expected_count() == 5
    pv = prepare(clip, cache_dir=tmp_path / "c", progress=False)
    assert len(pv) == len(times) and pv.timestamps == pytest.approx(times, abs=1e-4)
    assert len(pv) / pv.fps == pytest.approx(seconds, abs=0.02)
    assert "variable frame rate" in pv.report()


def test_steady_clip_keeps_its_header_rate_and_a_uniform_grid(synthetic_video):
    from innout.preprocess.media import open_media, timing_from_timestamps

    timing = open_media(synthetic_video).timing
    assert timing.fps == 8.0 and not timing.variable and len(timing.times) == 16
    np.testing.assert_array_equal(timing.times, np.arange(16) / 8.0)
    jittered = np.arange(30) / 30 + np.random.default_rng(0).uniform(-0.01, 0.01, 30)  # phone-like jitter
    assert timing_from_timestamps(jittered, 30.0).fps == 30.0
    assert timing_from_timestamps(None, 0.0).fps == 25.0  # nothing known: the default rate


def test_16bit_grayscale_png_reads_as_its_8bit_original(portrait, tmp_path):
    from innout.frames import read_frames

    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "gray8.png"), gray)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "shifted16.png"), gray.astype(np.uint16) << 8)  # the other 16-bit convention
    eight = read_frames(tmp_path / "gray8.png")[0]
    assert eight.shape == (512, 512, 3) and eight.dtype == np.uint8
    np.testing.assert_array_equal(read_frames(tmp_path / "gray16.png")[0], eight)
    np.testing.assert_array_equal(read_frames(tmp_path / "shifted16.png")[0], eight)
    face8, face16 = align_image(eight), align_image(read_frames(tmp_path / "gray16.png")[0])
    np.testing.assert_array_equal(face8.crop, face16.crop)


@pytest.mark.parametrize(
    "values,expected",
    [
        (np.array([[0, 257, 65535]], np.uint16), [0, 1, 255]),
        (np.array([[0, 128, 65535]], np.int32), [0, 0, 255]),  # 16-bit samples in Pillow's 32-bit mode
        (np.array([[0.0, 0.5, 1.0]], np.float32), [0, 128, 255]),
        (np.array([[np.nan, -1.0, 1.0]], np.float32), [0, 0, 255]),
        (np.array([[0.0, 100.4, 255.0]], np.float64), [0, 100, 255]),  # floats already in 0..255
        (np.array([[False, True, True]]), [0, 255, 255]),
    ],
)
def test_sample_types_become_8bit(values, expected):
    from innout.frames import to_rgb

    rgb = to_rgb(values)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == expected and (rgb == rgb[..., :1]).all()


def test_image_kinds_become_8bit_rgb(portrait, tmp_path):
    from PIL import Image

    from innout.frames import read_frames

    image = Image.fromarray(portrait)
    for mode in ("RGBA", "LA", "P", "1", "I", "F", "CMYK"):
        path = tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'tif' if mode in ('I', 'F') else 'png'}"
        image.convert(mode).save(path)
        frame = read_frames(path)[0]
        assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8, mode
        reference = np.asarray(image.convert(mode).convert("RGB")) if mode not in ("I", "F", "CMYK") else portrait
        if mode in ("I", "F"):
            reference = np.repeat(np.asarray(image.convert("L"))[..., None], 3, axis=2)
        tolerance = 60 if mode == "CMYK" else 1
        assert np.abs(frame.astype(int) - reference).max() <= tolerance, mode


def png_claiming(path, width, height):
    from tests.hostile.inputs import png_claiming as write

    return write(path, width, height)


@pytest.mark.parametrize(
    "options",
    [
        {"max_frames": 0},
        {"max_frames": -1},
        {"stride": 0},
        {"stride": -2},
        {"stride": 1.5},
        {"landmark_smoothing": float("nan")},
        {"camera_smoothing": -1.0},
        {"crop_offset_smoothing": float("inf")},
        {"min_face_fraction": 0.0},
        {"min_face_fraction": 1.01},
        {"max_gap": -1},
        {"max_faces": 0},
    ],
)
def test_prepare_options_out_of_range_are_refused(options):
    from innout.errors import UserError
    from innout.preprocess import PrepareOptionError

    name = next(iter(options))
    with pytest.raises(PrepareOptionError, match=f"{name} must be") as info:
        PrepareOptions(**options)
    assert isinstance(info.value, InputError) and isinstance(info.value, UserError)


def test_frame_selection_is_checked_everywhere(portrait, tmp_path):
    cv2.imwrite(str(tmp_path / "face.png"), portrait[..., ::-1])
    for selection in ({"max_frames": 0}, {"max_frames": -1}, {"stride": 0}):
        with pytest.raises(InputError, match=f"{next(iter(selection))} must be an integer >= 1"):
            load_media(tmp_path / "face.png", **selection)
    options = PrepareOptions(stride=np.int64(2), max_frames=3.0)  # whole numbers of any type become ints
    assert type(options.stride) is int and options.max_frames == 3 and type(options.max_frames) is int
    for flag in (["--max-frames", "0"], ["--max-frames", "-1"], ["--stride", "0"], ["--max-gap", "-1"]):
        argv = ["prepare", str(tmp_path / "face.png"), str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]
        try:
            status = main([*argv, *flag])
        except SystemExit as exc:  # argparse's own refusal of the option
            status = exc.code
        assert status == 2
    assert not (tmp_path / "out").exists()


def test_broken_media_is_refused_with_a_message(portrait, tmp_path):
    sine_wav(tmp_path / "a.mp4")  # audio only
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    png_claiming(tmp_path / "huge.png", 100_000, 100_000)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "a.png"), portrait)
    cv2.imwrite(str(mixed / "b.png"), portrait[:256])
    cases = {
        "a.mp4": "no video stream",
        "zero.png": "the file is empty",
        "zero.mp4": "the file is empty",
        "text.png": "not a readable image",
        "huge.png": "10000 megapixels; the limit is 100",
        "mixed": "b.png in mixed is 512x256 pixels but the first frame is 512x512",
    }
    for name, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            prepare(tmp_path / name, cache_dir=tmp_path / "c", progress=False)
        assert name in str(info.value)
