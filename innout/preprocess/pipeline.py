"""From a raw face video (or photo) to aligned 512 crops, EG3D cameras and paste-back transforms.

``prepare`` runs: read -> track the main face's mesh -> fill short gaps -> zero-lag smoothing ->
EG3D crop per frame -> head pose -> smoothed cameras, and caches the result on disk under a key made
of the input's content, the options and the format version. The cache entry is written to a temporary
folder and renamed into place, so a failure never leaves a half-written entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import align, camera, keypoints
from .landmarks import FaceMeshTracker
from .media import InputError, extract_audio, load_media
from .pasteback import FACE_OVAL
from .smoothing import fill_gaps, find_gaps, gaussian_smooth

FORMAT_VERSION = 2  # 2: the crop follows MTCNN's five points (was face-mesh points)


class NoFaceError(InputError):
    """No usable face; ``frames`` lists the frame indices (in the source) without one."""

    def __init__(self, message: str, frames: list[int]) -> None:
        super().__init__(message)
        self.frames = frames


@dataclass(frozen=True)
class PrepareOptions:
    """Every knob of preprocessing. Smoothing sigmas are in frames; 0 turns a filter off."""

    stride: int = 1  # keep every n-th frame
    max_frames: int | None = None  # cap on the number of kept frames
    landmark_smoothing: float = 1.5
    crop_offset_smoothing: float = 10.0  # MTCNN-minus-mesh offset of the crop points (see keypoints)
    camera_smoothing: float = 2.0
    max_gap: int = 8  # interpolate runs of at most this many frames without a face
    min_face_fraction: float = 0.5  # fail if fewer frames than this have a face
    max_faces: int = 3  # faces looked for per frame (the main one is tracked)


@dataclass
class AlignedFace:
    crop: np.ndarray  # 512x512x3 uint8
    camera: np.ndarray  # [25] float32
    landmarks: np.ndarray  # [468, 2] in crop pixels
    transform: np.ndarray  # [2, 3] crop pixels -> image pixels
    landmarks_image: np.ndarray  # [468, 3] in image pixels


@dataclass
class PreparedVideo:
    """Everything preprocessing gives for the T usable frames of an input; ``save`` / ``load`` write and
    read a cache entry (a folder)."""

    crops: np.ndarray  # [T, 512, 512, 3] uint8
    cameras: np.ndarray  # [T, 25] float32
    transforms: np.ndarray  # [T, 2, 3]
    landmarks: np.ndarray | None  # [T, 468, 2] crop pixels; None for an input that came aligned (dataset.json)
    frame_indices: list[int]  # source frame of each kept frame
    status: list[str]  # 'detected' or 'interpolated', per kept frame
    dropped: list[int]  # source frames left out: no face and too long a gap to fill
    fps: float
    frame_size: tuple[int, int]  # (height, width) of the source frames
    source: str
    audio_path: str | None = None
    jitter: dict[str, float] = field(default_factory=dict)
    mtcnn_frames: int = 0  # frames where MTCNN found the face (its offset to the mesh frames the crop)
    cache_dir: str | None = None

    def __len__(self) -> int:
        return len(self.crops)

    def face_outlines(self) -> np.ndarray:
        """[T, K, 2] the face-mesh outline of each frame in crop pixels: what the paste-back mask is made of.
        An input that came aligned has no landmarks: its outline is the whole crop (the crop is the frame)."""
        if self.landmarks is None:
            edge = float(self.crops.shape[1] - 1)
            square = np.array([[0, 0], [edge, 0], [edge, edge], [0, edge]], np.float32)
            return np.repeat(square[None], len(self), axis=0)
        return self.landmarks[:, FACE_OVAL, :2].astype(np.float32)

    def save(self, entry: str | os.PathLike, audio_from: Path | None = None) -> PreparedVideo:
        """Write this as the cache entry ``entry``, atomically (a temporary folder renamed into place), with
        the audio track of ``audio_from`` when given; returns the entry loaded back."""
        entry = Path(entry)
        tmp = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            np.save(tmp / "crops.npy", self.crops)
            arrays = {"cameras": self.cameras, "transforms": self.transforms}
            if self.landmarks is not None:
                arrays["landmarks"] = self.landmarks
            np.savez(tmp / "arrays.npz", **arrays)
            audio = "audio.mka" if audio_from is not None and extract_audio(audio_from, tmp / "audio.mka") else None
            meta = {k: getattr(self, k) for k in _META_KEYS}
            meta.update(audio=audio, version=FORMAT_VERSION)
            (tmp / "meta.json").write_text(json.dumps(meta))
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return PreparedVideo.load(entry)

    @classmethod
    def load(cls, entry: str | os.PathLike) -> PreparedVideo:
        """Read a cache entry written by ``save`` (the crops are memory-mapped)."""
        entry = Path(entry)
        meta = json.loads((entry / "meta.json").read_text())
        meta["frame_size"] = tuple(meta["frame_size"])
        arrays = np.load(entry / "arrays.npz")
        return cls(
            crops=np.load(entry / "crops.npy", mmap_mode="r"),
            cameras=arrays["cameras"],
            transforms=arrays["transforms"],
            landmarks=arrays.get("landmarks"),
            **{k: meta[k] for k in _META_KEYS if k in meta},
            audio_path=str(entry / meta["audio"]) if meta["audio"] else None,
            cache_dir=str(entry),
        )

    def report(self) -> str:
        interpolated = [self.frame_indices[i] for i, s in enumerate(self.status) if s == "interpolated"]
        lines = [f"{len(self)} frames at {self.fps:.2f} fps from {Path(self.source).name}"]
        if interpolated:
            lines.append(f"no face found, filled by interpolation: frames {_ranges(interpolated)}")
        if self.dropped:
            lines.append(f"no face found, left out (gap too long to fill): frames {_ranges(self.dropped)}")
        if self.jitter:
            lines.append(
                "eye-centre jitter in the crop: "
                f"{self.jitter['raw']:.2f} px/frame before smoothing, {self.jitter['smoothed']:.2f} after"
            )
        lines.append(f"MTCNN found the face in {self.mtcnn_frames} of {len(self)} frames (it frames the crop)")
        lines.append("audio: " + ("kept" if self.audio_path else "none"))
        return "\n".join(lines)


_META_KEYS = ("frame_indices", "status", "dropped", "fps", "frame_size", "source", "jitter", "mtcnn_frames")


def _ranges(indices: list[int]) -> str:
    parts, start, prev = [], None, None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ", ".join(parts)


def _eye_centres(landmarks: np.ndarray) -> np.ndarray:
    return landmarks[:, list(align.EYE_LEFT_IMAGE) + list(align.EYE_RIGHT_IMAGE), :2].mean(1)


def _crop_landmarks(landmarks: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    return np.stack(
        [align.apply_affine(align.invert_affine(t), lm) for t, lm in zip(transforms, landmarks, strict=True)]
    )


def _jitter(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=-1).mean()) if len(points) > 1 else 0.0


def align_image(image_rgb: np.ndarray) -> AlignedFace:
    """Align one photo: EG3D crop, camera, landmarks and the crop -> image transform."""
    image_rgb = np.ascontiguousarray(image_rgb[..., :3])
    detector = keypoints.load_detector()
    points = None
    with FaceMeshTracker(video=False) as tracker:
        landmarks = tracker(image_rgb)
        if detector is not None:  # the whole pyramid, as EG3D's batch_mtcnn.py runs it on a photo
            landmarks, points = keypoints.resolve(tracker, detector, image_rgb, landmarks, fast=False)
    if landmarks is None:
        raise NoFaceError("no face found in the image", [0])
    h, w = image_rgb.shape[:2]
    points = align.five_points(landmarks) if points is None else points
    transform = align.crop_transform(points, w, h)
    label = camera.camera_label(camera.head_rotation(landmarks))
    crop_lm = align.apply_affine(align.invert_affine(transform), landmarks)
    return AlignedFace(align.warp_crop(image_rgb, transform), label, crop_lm, transform, landmarks)


def _segments(valid: np.ndarray) -> list[tuple[int, int]]:
    return find_gaps(~valid)  # runs of valid frames


def _process(media, options: PrepareOptions, progress: bool) -> PreparedVideo:
    frames = media.frames
    h, w = frames[0].shape[:2]
    raw = np.full((len(frames), 468, 3), np.nan)
    mesh5 = np.full((len(frames), 5, 2), np.nan)
    mtcnn5 = np.full((len(frames), 5, 2), np.nan)
    detector = keypoints.load_detector()
    with FaceMeshTracker(video=media.kind != "image", max_faces=options.max_faces) as tracker:
        for i, frame in enumerate(tqdm(frames, desc="face landmarks", unit="frame", disable=not progress)):
            lm, found_points = tracker(frame), None
            if detector is not None:
                lm, found_points = keypoints.resolve(tracker, detector, frame, lm, fast=True)
            if lm is None:
                continue
            raw[i] = lm
            mesh5[i] = align.five_points(lm)
            if found_points is not None:
                mtcnn5[i] = found_points
    found = ~np.isnan(raw[:, 0, 0])
    missing_source = [media.frame_indices[i] for i in np.flatnonzero(~found)]
    if found.mean() < options.min_face_fraction:
        what = (
            "no face found in any frame"
            if not found.any()
            else f"a face was found in only {found.sum()} of {len(found)} frames"
        )
        raise NoFaceError(
            f"{media.source.name}: {what}; frames without a face: {_ranges(missing_source)}", missing_source
        )

    points, _ = keypoints.crop_points(mesh5, mtcnn5, options.crop_offset_smoothing)
    filled, still_missing, filled_idx = fill_gaps(raw, found, options.max_gap)
    filled_points = fill_gaps(points, found, options.max_gap)[0]
    keep = ~still_missing
    smoothed, smoothed_points = filled.copy(), filled_points.copy()
    for start, end in _segments(keep):
        smoothed[start:end] = gaussian_smooth(filled[start:end], options.landmark_smoothing)
        smoothed_points[start:end] = gaussian_smooth(filled_points[start:end], options.landmark_smoothing)

    kept = np.flatnonzero(keep)
    transforms = np.stack([align.crop_transform(smoothed_points[i], w, h) for i in kept])
    raw_transforms = np.stack([align.crop_transform(filled_points[i], w, h) for i in kept])
    rotations, prev = [], None
    for i in tqdm(kept, desc="head pose", unit="frame", disable=not progress):
        prev = camera.head_rotation(smoothed[i], init=prev)
        rotations.append(prev)
    rotations = np.stack(rotations)
    segment_of = np.cumsum(np.r_[0, np.diff(kept) > 1])  # consecutive kept frames share a segment
    for seg in np.unique(segment_of):
        sel = segment_of == seg
        rotations[sel] = camera.smooth_rotations(rotations[sel], options.camera_smoothing)
    cameras = np.stack([camera.camera_label(r) for r in rotations])
    crops = np.stack([align.warp_crop(frames[i], t) for i, t in zip(kept, transforms, strict=True)])
    crop_lm = _crop_landmarks(smoothed[kept], transforms)
    raw_eyes = _eye_centres(_crop_landmarks(filled[kept], raw_transforms))
    jitter = {"raw": _jitter(raw_eyes), "smoothed": _jitter(_eye_centres(crop_lm))}
    filled_set = set(filled_idx)
    return PreparedVideo(
        crops=crops,
        cameras=cameras.astype(np.float32),
        transforms=transforms,
        landmarks=crop_lm[..., :2].astype(np.float32),
        frame_indices=[media.frame_indices[i] for i in kept],
        status=["interpolated" if i in filled_set else "detected" for i in kept],
        dropped=[media.frame_indices[i] for i in np.flatnonzero(still_missing)],
        fps=media.fps,
        frame_size=(h, w),
        source=str(media.source),
        jitter=jitter,
        mtcnn_frames=int((~np.isnan(mtcnn5[kept, 0, 0])).sum()),
    )


def input_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("INNOUT_CACHE_DIR", Path.home() / ".cache" / "innout")) / "prepare"


def cache_key(path: Path, options: PrepareOptions) -> str:
    payload = json.dumps({"input": input_digest(path), "options": dataclasses.asdict(options), "v": FORMAT_VERSION})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def is_eg3d_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "dataset.json").is_file()


def load_eg3d_dataset(folder: str | os.PathLike, fps: float = 25.0) -> PreparedVideo:
    """A folder already in EG3D's dataset layout (``dataset.json`` with ``{"labels": [[name, 25 numbers], ...]}``
    and the aligned crops, beside it or in ``frames/``), taken as it is: no face detection, its own cameras,
    the crop being the frame. This is how synthetic clips with known cameras are fitted."""
    import cv2

    folder = Path(folder)
    try:
        labels = json.loads((folder / "dataset.json").read_text())["labels"]
        names = [str(name) for name, _ in labels]
        cameras = np.asarray([label for _, label in labels], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder}/dataset.json: not EG3D's labels format ({exc})") from exc
    if cameras.ndim != 2 or cameras.shape[1] != 25 or not np.isfinite(cameras).all():
        raise InputError(f"{folder}/dataset.json: every label must be 25 finite numbers")
    frames_dir = folder / "frames" if (folder / "frames").is_dir() else folder
    crops = []
    for name in names:
        image = cv2.imread(str(frames_dir / name), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{frames_dir / name}: listed in dataset.json but not a readable image")
        if image.shape[:2] != (512, 512):
            image = cv2.resize(image, (512, 512), interpolation=cv2.INTER_CUBIC)
        crops.append(image[..., ::-1])
    h, w = cv2.imread(str(frames_dir / names[0])).shape[:2] if names else (512, 512)
    scale = np.array([[w / 512, 0, 0], [0, h / 512, 0]], np.float64)
    return PreparedVideo(
        crops=np.stack(crops), cameras=cameras, transforms=np.repeat(scale[None], len(names), axis=0),
        landmarks=None, frame_indices=list(range(len(names))), status=["given"] * len(names), dropped=[],
        fps=fps, frame_size=(h, w), source=str(frames_dir),
    )  # fmt: skip


def prepare(
    path: str | os.PathLike,
    options: PrepareOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> PreparedVideo:
    """Aligned crops, cameras and transforms for every usable frame of a video, a folder of frames or an image."""
    options = options or PrepareOptions()
    path = Path(path)
    if is_eg3d_dataset(path):
        return load_eg3d_dataset(path)
    # a missing path has no key; load_media below reports it
    entry = Path(cache_dir or default_cache_dir()) / cache_key(path, options) if path.exists() else None
    if use_cache and entry is not None and (entry / "meta.json").is_file():
        return PreparedVideo.load(entry)  # a cache hit does not decode the video
    media = load_media(path, stride=options.stride, max_frames=options.max_frames)
    prepared = _process(media, options, progress)
    prepared.source = str(path)
    entry.parent.mkdir(parents=True, exist_ok=True)
    return prepared.save(entry, audio_from=path if media.audio_codec else None)
