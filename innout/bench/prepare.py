"""Preprocessing benchmark on the shared real data (``python -m innout.bench prepare``).

- every clip in data/videos: frames with a face, filled/dropped frames, eye-centre jitter in the crop
  before/after smoothing, time of ``prepare`` (no cache);
- data/images with official EG3D cameras: angle between our viewing direction and the official one, and
  how far our crop of these already-aligned images is from the identity (pixels, at the centre and worst
  corner);
- paste-back round trip: each unedited crop pasted back, PSNR against the original inside the face mask.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ..export.video import source_frames
from ..frames import read_frames
from ..preprocess import PrepareOptions, align_image, face_mask, paste_back, prepare
from ..preprocess.camera import angle_between_cameras
from ..preprocess.pasteback import frame_mask
from . import SHARED_DATA


def masked_psnr(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> float:
    w = weight[..., None] * np.ones(3)
    mse = float((w * (a.astype(np.float64) - b) ** 2).sum() / max(w.sum(), 1e-8))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def bench_videos(data: Path, options: PrepareOptions, psnr_frames: int) -> None:
    for clip in sorted((data / "videos").glob("*.mp4")):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            pv = prepare(clip, options, cache_dir=cache, progress=False)
            seconds = time.perf_counter() - start
            total = len(pv) + len(pv.dropped)
            detected = pv.status.count("detected")
            picks = sorted({int(i) for i in np.linspace(0, len(pv) - 1, min(psnr_frames, len(pv)))})
            originals = source_frames(clip, [pv.frame_indices[i] for i in picks])  # streamed, not held whole
            psnrs = []
            for i, frame in zip(picks, originals, strict=True):
                mask = face_mask(np.asarray(pv.landmarks[i]))
                pasted = paste_back(frame, np.asarray(pv.crops[i]), pv.transforms[i], mask)
                inside = frame_mask(mask, pv.transforms[i], frame.shape[:2]) > 0.5
                psnrs.append(masked_psnr(pasted, frame, inside.astype(np.float64)))
        aligned = ""
        if tuple(pv.frame_size) == (512, 512):  # an already EG3D-aligned clip: its crop should be the identity
            centre = np.abs(pv.transforms @ np.array([255.5, 255.5, 1.0]) - 255.5).max(1)
            aligned = (
                f" identity_offset_mean={centre.mean():.1f}px p90={np.percentile(centre, 90):.1f}px"
                f" scale={pv.transforms[:, 0, 0].mean():.3f}"
            )
        print(
            f"prepare/{clip.stem}: frames={total} face_found={detected / total:.3f} "
            f"interpolated={pv.status.count('interpolated')} dropped={len(pv.dropped)} "
            f"jitter_raw={pv.jitter['raw']:.2f}px jitter_smoothed={pv.jitter['smoothed']:.2f}px "
            f"time={seconds:.1f}s pasteback_psnr_min={min(psnrs):.1f}dB mean={np.mean(psnrs):.1f}dB "
            f"mtcnn={pv.mtcnn_frames}/{len(pv)}{aligned} "
            f"| size={pv.frame_size[1]}x{pv.frame_size[0]} fps={pv.fps:g} audio={'yes' if pv.audio_path else 'no'}"
        )


def bench_cameras(data: Path) -> None:
    grid = np.array([[0, 0], [511, 0], [0, 511], [511, 511]], float)
    for cam_file in sorted((data / "images" / "cameras").glob("*.npy")):
        image = read_frames(data / "images" / (cam_file.stem + ".png"))[0]
        face = align_image(image)
        official = np.load(cam_file).reshape(-1)
        centre = np.abs(face.transform @ [255.5, 255.5, 1] - 255.5).max()
        corner = np.abs(grid @ face.transform[:, :2].T + face.transform[:, 2] - grid).max()
        print(
            f"prepare/camera_{cam_file.stem}: angle_to_official={angle_between_cameras(face.camera, official):.2f}deg "
            f"crop_offset_centre={centre:.1f}px crop_offset_worst_corner={corner:.1f}px "
            f"crop_scale={face.transform[0, 0]:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench prepare", description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--psnr-frames", type=int, default=20, help="frames per clip for the paste-back PSNR")
    parser.add_argument(
        "--crop-offset-smoothing", type=float, default=PrepareOptions.crop_offset_smoothing,
        help="PrepareOptions.crop_offset_smoothing (0: MTCNN's own points per frame)",
    )  # fmt: skip
    parser.add_argument("--videos-only", action="store_true", help="skip the camera check on the images")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"{args.data} not found: pass --data /path/to/shared/data")
    if not args.videos_only:
        bench_cameras(args.data)
    print(f"# crop_offset_smoothing={args.crop_offset_smoothing}")
    bench_videos(args.data, PrepareOptions(crop_offset_smoothing=args.crop_offset_smoothing), args.psnr_frames)
    return 0
