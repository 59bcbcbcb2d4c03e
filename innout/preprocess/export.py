"""Writing a prepared video as files: EG3D-style crops + dataset.json, a preview video, a report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .align import five_points
from .pipeline import PreparedVideo


def frame_name(i: int) -> str:
    return f"img{i:08d}.png"


def draw_landmarks(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(crop).copy()
    for x, y in landmarks[::3, :2]:
        cv2.circle(out, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1, lineType=cv2.LINE_AA)
    for x, y in five_points(landmarks):
        cv2.circle(out, (int(round(x)), int(round(y))), 4, (255, 64, 64), -1, lineType=cv2.LINE_AA)
    return out


def write_prepared(pv: PreparedVideo, outdir: str | Path, *, preview: bool = True, progress: bool = True) -> Path:
    """OUTDIR/frames/img########.png, dataset.json ({"labels": [[name, 25 numbers], ...]}, EG3D's format),
    prepare.json (transforms, source frame indices, status, fps, jitter), preview.mp4, audio.mka."""
    outdir = Path(outdir)
    frames_dir = outdir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    names = [frame_name(i) for i in range(len(pv))]
    for name, crop in tqdm(
        zip(names, pv.crops, strict=True), total=len(pv), desc="writing crops", disable=not progress
    ):
        cv2.imwrite(str(frames_dir / name), np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    labels = [[n, [float(v) for v in cam]] for n, cam in zip(names, pv.cameras, strict=True)]
    (outdir / "dataset.json").write_text(json.dumps({"labels": labels}))
    details = {
        "source": pv.source,
        "fps": pv.fps,
        "frame_size": list(pv.frame_size),
        "frames": [
            {"name": n, "source_frame": int(src), "status": st, "crop_to_frame": t.tolist()}
            for n, src, st, t in zip(names, pv.frame_indices, pv.status, pv.transforms, strict=True)
        ],
        "dropped_source_frames": pv.dropped,
        "jitter_px": pv.jitter,
    }
    (outdir / "prepare.json").write_text(json.dumps(details, indent=1))
    if pv.audio_path:
        shutil.copyfile(pv.audio_path, outdir / "audio.mka")
    if preview:
        import imageio_ffmpeg

        writer = imageio_ffmpeg.write_frames(
            str(outdir / "preview.mp4"), (512, 512), fps=pv.fps, codec="libx264", macro_block_size=16, quality=6
        )
        writer.send(None)
        for i, crop in enumerate(pv.crops):
            drawn = crop if pv.landmarks is None else draw_landmarks(crop, pv.landmarks[i])
            writer.send(np.ascontiguousarray(drawn))
        writer.close()
    return outdir
