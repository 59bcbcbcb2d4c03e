"""A prepared video: what preprocessing hands to the fit, and its folder on disk.

``PreparedVideo`` holds the aligned 512 crops (memory-mapped), EG3D's camera labels, the crop -> frame
transforms, landmarks and what happened to every frame; it saves itself to a folder (written atomically, every
file's hash in ``meta.json``, checked when read) and loads from one. ``PrepareOptions`` are the choices that
shape it, each checked where it enters.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import storage
from ..numbers import Range
from .media import InputError, check_selection, extract_audio
from .pasteback import FACE_OVAL

FORMAT_VERSION = 4
# 2: the crop follows MTCNN's five points (was face-mesh points); 3: files carry hashes; 4: a video's frames
# are the file's own (no constant-rate resampling of variable-rate clips), with their times


class NoFaceError(InputError):
    """No usable face; ``frames`` lists the frame indices (in the source) without one."""

    def __init__(self, message: str, frames: list[int]) -> None:
        super().__init__(message)
        self.frames = frames


class PrepareOptionError(InputError):
    """A preprocessing option outside its range; the message names it and the range."""


SIGMA = Range(0, 1000, unit="frames")  # a larger Gaussian only costs time (its kernel spans 6 sigma)
FACE_FRACTION = Range(0, 1, lo_open=True)
MAX_GAP = Range(0, integer=True, unit="frames")
MAX_FACES = Range(1, 50, integer=True)


@dataclass(frozen=True)
class PrepareOptions:
    """Every knob of preprocessing. Smoothing sigmas are in frames; 0 turns a filter off. Checked when made
    (``PrepareOptionError``), so the command line, the app and the API all refuse the same values."""

    stride: int = 1  # keep every n-th frame
    max_frames: int | None = None  # cap on the number of kept frames
    landmark_smoothing: float = 1.5
    crop_offset_smoothing: float = 10.0  # MTCNN-minus-mesh offset of the crop points (see keypoints)
    camera_smoothing: float = 2.0
    max_gap: int = 8  # interpolate runs of at most this many frames without a face
    min_face_fraction: float = 0.5  # fail if fewer frames than this have a face
    max_faces: int = 3  # faces looked for per frame (the main one is tracked)

    def __post_init__(self) -> None:
        try:
            stride, max_frames = check_selection(self.stride, self.max_frames)
        except InputError as exc:
            raise PrepareOptionError(str(exc)) from None
        checked = {
            "stride": stride,
            "max_frames": max_frames,
            **{k: SIGMA.check(getattr(self, k), k, PrepareOptionError) for k in _SIGMAS},
            "max_gap": MAX_GAP.check(self.max_gap, "max_gap", PrepareOptionError),
            "min_face_fraction": FACE_FRACTION.check(self.min_face_fraction, "min_face_fraction", PrepareOptionError),
            "max_faces": MAX_FACES.check(self.max_faces, "max_faces", PrepareOptionError),
        }
        for name, value in checked.items():  # plain ints and floats: the cache key is their JSON
            object.__setattr__(self, name, value)


_SIGMAS = ("landmark_smoothing", "crop_offset_smoothing", "camera_smoothing")


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
    content_digest: str | None = None  # hash of the frames, cameras and transforms: what fits are keyed by
    timestamps: list[float] | None = None  # seconds from the source's first frame, per kept frame (videos)

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

    def save(
        self, entry: str | os.PathLike, audio_from: Path | None = None, crops_file: Path | None = None
    ) -> PreparedVideo:
        """Write this as the cache entry ``entry``, atomically (a temporary folder renamed into place), with
        the audio track of ``audio_from`` when given and every file's hash in ``meta.json``; returns the entry
        loaded back. ``crops_file``: a .npy of ``crops`` already on disk (beside the entry), moved in rather
        than written again."""
        entry = Path(entry)
        tmp = storage.temporary_name(entry)
        storage.remove_orphans(entry.parent, r"[0-9a-f]{24}(\.crops\.npy)?")  # entries and their crops
        shutil.rmtree(tmp, ignore_errors=True)
        with storage.writing("the prepared frames", entry.parent):
            tmp.mkdir(parents=True)
            try:
                if crops_file is not None:
                    os.replace(crops_file, tmp / "crops.npy")
                else:
                    np.save(tmp / "crops.npy", self.crops)
                arrays = {"cameras": self.cameras, "transforms": self.transforms}
                if self.landmarks is not None:
                    arrays["landmarks"] = self.landmarks
                np.savez(tmp / "arrays.npz", **arrays)
                audio = "audio.mka" if audio_from is not None and extract_audio(audio_from, tmp / "audio.mka") else None
                meta = {k: getattr(self, k) for k in _META_KEYS}
                files = ["crops.npy", "arrays.npz"] + ([audio] if audio else [])
                meta.update(audio=audio, version=FORMAT_VERSION, files=storage.manifest(tmp, files))
                # what fits are keyed by: the frames' and cameras' content. crops.npy's bytes are (np.save is
                # deterministic; its hash was read in blocks, not through a memory map that would count the
                # whole clip as this process's memory); the .npz is a zip that records when it was written
                meta["content"] = storage.array_digest(
                    np.frombuffer(bytes.fromhex(meta["files"]["crops.npy"]), np.uint8), self.cameras, self.transforms
                )
                (tmp / "meta.json").write_text(json.dumps(meta))
                if entry.exists():
                    shutil.rmtree(entry)
                os.replace(tmp, entry)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return PreparedVideo.load(entry)

    @classmethod
    def load(cls, entry: str | os.PathLike) -> PreparedVideo:
        """Read a cache entry written by ``save`` (the crops are memory-mapped) after checking every file
        against its hash; ``CorruptEntryError`` when anything is missing, damaged or inconsistent."""
        entry = Path(entry)
        try:
            meta = json.loads((entry / "meta.json").read_text())
            files = meta["files"]
            storage.verify_manifest(entry, files)
            meta["frame_size"] = tuple(meta["frame_size"])
            arrays = np.load(entry / "arrays.npz", allow_pickle=False)
            crops = np.load(entry / "crops.npy", mmap_mode="r", allow_pickle=False)
            prepared = cls(
                crops=crops,
                cameras=arrays["cameras"],
                transforms=arrays["transforms"],
                landmarks=arrays.get("landmarks"),
                **{k: meta[k] for k in _META_KEYS if k in meta},
                audio_path=str(entry / meta["audio"]) if meta["audio"] else None,
                cache_dir=str(entry),
                content_digest=meta["content"],
            )
        except storage.CorruptEntryError:
            raise
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:  # other OSErrors are not damage
            raise storage.CorruptEntryError(f"{entry}: not a readable prepared-frames entry ({exc})") from exc
        prepared.check_consistent(str(entry))
        return prepared

    def check_consistent(self, where: str) -> None:
        """Shapes agree with each other and the numbers are finite (``CorruptEntryError`` otherwise)."""
        n = len(self.crops)
        problems = []
        if self.crops.ndim != 4 or self.crops.shape[1:] != (512, 512, 3) or self.crops.dtype != np.uint8:
            problems.append(f"crops are {self.crops.dtype} {tuple(self.crops.shape)}, expected uint8 [T, 512, 512, 3]")
        if self.cameras.shape != (n, 25) or not np.isfinite(self.cameras).all():
            problems.append(f"cameras must be {n} rows of 25 finite numbers")
        if self.transforms.shape != (n, 2, 3) or not np.isfinite(self.transforms).all():
            problems.append(f"transforms must be {n} finite 2x3 matrices")
        if len(self.frame_indices) != n or len(self.status) != n:
            problems.append("frame indices and statuses do not match the number of crops")
        if problems:
            raise storage.CorruptEntryError(f"{where}: " + "; ".join(problems))

    def report(self) -> str:
        interpolated = [self.frame_indices[i] for i, s in enumerate(self.status) if s == "interpolated"]
        lines = [f"{len(self)} frames at {self.fps:.2f} fps from {display_name(self.source)}"]
        if is_variable_rate(self.timestamps, self.fps):
            lines.append("variable frame rate: each frame keeps its time in the source")
        if interpolated:
            lines.append(f"no face found, filled by interpolation: frames {frame_ranges(interpolated)}")
        if self.dropped:
            lines.append(f"no face found, left out (gap too long to fill): frames {frame_ranges(self.dropped)}")
        if self.jitter:
            lines.append(
                "eye-centre jitter in the crop: "
                f"{self.jitter['raw']:.2f} px/frame before smoothing, {self.jitter['smoothed']:.2f} after"
            )
        if all(s == "given" for s in self.status):
            lines.append("aligned frames with their own cameras (EG3D's dataset layout): no face detection needed")
        else:
            lines.append(f"MTCNN found the face in {self.mtcnn_frames} of {len(self)} frames (it frames the crop)")
        lines.append("audio: " + ("kept" if self.audio_path else "none"))
        return "\n".join(lines)


_META_KEYS = (
    "frame_indices", "status", "dropped", "fps", "frame_size", "source", "jitter", "mtcnn_frames", "timestamps",
)  # fmt: skip


def frame_ranges(indices: list[int]) -> str:
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


def is_variable_rate(timestamps: list[float] | None, fps: float) -> bool:
    """Whether frames shown at ``timestamps`` stray from a constant ``fps`` by half a frame or more."""
    if not timestamps or len(timestamps) < 2 or not fps > 0:
        return False
    times = np.asarray(timestamps, np.float64)
    return bool(np.abs(times - times[0] - np.arange(len(times)) / fps).max() >= 0.5 / fps)


def display_name(path: str | os.PathLike | None) -> str:
    """The name a person knows an input by: a file's name, or for an aligned clip's ``frames/`` folder the clip's."""
    if not path:
        return "(unknown)"
    path = Path(path)
    return path.parent.name if path.name == "frames" and path.parent.name else path.name
