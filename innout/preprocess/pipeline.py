"""From a raw face video (or photo) to aligned 512 crops, EG3D cameras and paste-back transforms.

``prepare`` runs: read -> track the main face's mesh -> fill short gaps -> zero-lag smoothing ->
EG3D crop per frame -> head pose -> smoothed cameras, and caches the result on disk under a key made
of the input's content, the options and the format version. The cache entry is written to a temporary
folder and renamed into place, so a failure never leaves a half-written entry.

Memory stays bounded whatever the input's length: the input is decoded twice as a stream, one frame at
a time. The first pass keeps only landmarks and crop points (about 12 KB a frame); smoothing and the
crop transforms need all of them. The second pass warps each kept frame into its 512x512 crop, which
goes straight into the cache entry's ``crops.npy`` on disk (768 KB a frame, never held in memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import storage
from ..numbers import Range
from . import align, camera, keypoints
from .landmarks import FaceMeshTracker
from .media import InputError, MediaSource, check_selection, extract_audio, open_media
from .media import load_media as load_media  # kept importable from here (callers and tests use it)
from .pasteback import FACE_OVAL
from .smoothing import fill_gaps, find_gaps, gaussian_smooth

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
        lines = [f"{len(self)} frames at {self.fps:.2f} fps from {Path(self.source).name}"]
        if _is_variable(self.timestamps, self.fps):
            lines.append("variable frame rate: each frame keeps its time in the source")
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


_META_KEYS = (
    "frame_indices", "status", "dropped", "fps", "frame_size", "source", "jitter", "mtcnn_frames", "timestamps",
)  # fmt: skip


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


def _is_variable(timestamps: list[float] | None, fps: float) -> bool:
    """Whether frames shown at ``timestamps`` stray from a constant ``fps`` by half a frame or more."""
    if not timestamps or len(timestamps) < 2 or not fps > 0:
        return False
    times = np.asarray(timestamps, np.float64)
    return bool(np.abs(times - times[0] - np.arange(len(times)) / fps).max() >= 0.5 / fps)


@dataclass
class _Tracks:
    """What the first pass keeps of each kept frame: no pixels, only landmarks and crop points."""

    indices: list[int]  # source frame of each kept frame
    raw: np.ndarray  # [N, 468, 3] face-mesh landmarks, NaN where no face
    mesh5: np.ndarray  # [N, 5, 2] the mesh's five points
    mtcnn5: np.ndarray  # [N, 5, 2] MTCNN's five points, NaN where it missed
    frame_size: tuple[int, int]  # (height, width)


def _frame_label(media: MediaSource, index: int) -> str:
    if media.kind == "folder" and media.images is not None:
        return f"{media.images[index].name} in {media.source.name}"
    return f"frame {index} of {media.source.name}"


def _check_size(media: MediaSource, index: int, frame: np.ndarray, size: tuple[int, int] | None) -> tuple[int, int]:
    """The (height, width) every frame must have: the crop transforms are computed for one frame size."""
    h, w = frame.shape[:2]
    if size is not None and (h, w) != size:
        raise InputError(
            f"{_frame_label(media, index)} is {w}x{h} pixels but the first frame is {size[1]}x{size[0]}: "
            "every frame must have the same size"
        )
    return h, w


def _track(media: MediaSource, options: PrepareOptions, progress: bool) -> _Tracks:
    """Pass 1: decode frame by frame and track the main face (mesh + MTCNN's points)."""
    indices, raw, mesh5, mtcnn5 = [], [], [], []
    size = None
    detector = keypoints.load_detector()
    nan5 = np.full((5, 2), np.nan)
    stream = media.frames()
    frames = tqdm(stream, total=media.expected_count(), desc="face landmarks", unit="frame", disable=not progress)
    with closing(stream), FaceMeshTracker(video=media.kind != "image", max_faces=options.max_faces) as tracker:
        for index, frame in frames:
            size = _check_size(media, index, frame, size)
            lm, found_points = tracker(frame), None
            if detector is not None:
                lm, found_points = keypoints.resolve(tracker, detector, frame, lm, fast=True)
            indices.append(index)
            raw.append(np.full((468, 3), np.nan) if lm is None else lm)
            mesh5.append(nan5 if lm is None else align.five_points(lm))
            mtcnn5.append(nan5 if lm is None or found_points is None else found_points)
    as_array = partial(np.asarray, dtype=np.float64)
    return _Tracks(indices, as_array(raw), as_array(mesh5), as_array(mtcnn5), size)


class _CropSink:
    """The crops, in order, in a preallocated array or (with ``path``) written straight into a .npy file,
    so that no more than one crop is ever in memory."""

    def __init__(self, count: int, path: Path | None) -> None:
        shape = (count, align.OUTPUT, align.OUTPUT, 3)
        self.path, self.count, self.written = path, count, 0
        self.array = np.empty(shape, np.uint8) if path is None else None
        self.file = None
        if path is not None:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
            with storage.writing("the prepared crops", path):
                self.file = open(path, "wb")  # noqa: SIM115 - closed by finish() or abort()
                np.lib.format.write_array_header_1_0(self.file, header)

    def add(self, crop: np.ndarray) -> None:
        if self.file is not None:
            with storage.writing("the prepared crops", self.path):
                self.file.write(np.ascontiguousarray(crop, np.uint8).tobytes())
        else:
            self.array[self.written] = crop
        self.written += 1

    def finish(self) -> np.ndarray:
        if self.file is None:
            return self.array
        with storage.writing("the prepared crops", self.path):
            self.file.close()
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()


def _warp_crops(
    media: MediaSource, indices: list[int], transforms: np.ndarray, size: tuple[int, int],
    crops_file: Path | None, progress: bool,
) -> np.ndarray:  # fmt: skip
    """Pass 2: decode again and warp each kept frame (source ``indices``) with its transform."""
    row_of = {index: row for row, index in enumerate(indices)}
    sink = _CropSink(len(indices), crops_file)
    stream = media.frames()
    bar = tqdm(total=len(indices), desc="crops", unit="frame", disable=not progress)
    try:
        for index, frame in stream:
            row = row_of.get(index)
            if row is None:
                continue
            _check_size(media, index, frame, size)
            if row != sink.written:
                raise InputError(f"{media.source.name}: the frames came in a different order the second time")
            sink.add(align.warp_crop(frame, transforms[row]))
            bar.update()
            if sink.written == len(indices):
                break
    except BaseException:
        sink.abort()
        raise
    finally:
        stream.close()  # stops the decoder
        bar.close()
    if sink.written != len(indices):
        sink.abort()
        raise InputError(
            f"{media.source.name}: gave {sink.written} of its {len(indices)} frames when read again; "
            "did the file change while it was being prepared?"
        )
    return sink.finish()


def _process(
    media: MediaSource, options: PrepareOptions, progress: bool, crops_file: Path | None = None
) -> PreparedVideo:
    """Two streaming passes over ``media``: landmarks, then crops (into ``crops_file`` when given)."""
    tracks = _track(media, options, progress)
    raw, mesh5, mtcnn5 = tracks.raw, tracks.mesh5, tracks.mtcnn5
    h, w = tracks.frame_size
    found = ~np.isnan(raw[:, 0, 0])
    missing_source = [tracks.indices[i] for i in np.flatnonzero(~found)]
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
    kept_indices = [tracks.indices[i] for i in kept]
    crops = _warp_crops(media, kept_indices, transforms, (h, w), crops_file, progress)
    crop_lm = _crop_landmarks(smoothed[kept], transforms)
    raw_eyes = _eye_centres(_crop_landmarks(filled[kept], raw_transforms))
    jitter = {"raw": _jitter(raw_eyes), "smoothed": _jitter(_eye_centres(crop_lm))}
    filled_set = set(filled_idx)
    return PreparedVideo(
        crops=crops,
        cameras=cameras.astype(np.float32),
        transforms=transforms,
        landmarks=crop_lm[..., :2].astype(np.float32),
        frame_indices=kept_indices,
        status=["interpolated" if i in filled_set else "detected" for i in kept],
        dropped=[tracks.indices[i] for i in np.flatnonzero(still_missing)],
        fps=media.fps,
        frame_size=(h, w),
        source=str(media.source),
        jitter=jitter,
        mtcnn_frames=int((~np.isnan(mtcnn5[kept, 0, 0])).sum()),
        timestamps=media.times(kept_indices),
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
    # a missing path has no key; open_media below reports it
    entry = Path(cache_dir or default_cache_dir()) / cache_key(path, options) if path.exists() else None
    if entry is None:
        open_media(path, stride=options.stride, max_frames=options.max_frames)  # raises the missing-input error
        raise InputError(f"{path}: no such file or folder")
    if use_cache and (entry / "meta.json").is_file():
        try:  # a cache hit needs no lock (a read-only cache serves its entries) and does not decode the video
            return PreparedVideo.load(entry)
        except storage.CorruptEntryError:
            pass  # repaired below, under the lock
    with storage.writing("the preprocessing cache", entry.parent):
        entry.parent.mkdir(parents=True, exist_ok=True)
    with storage.exclusive(entry.with_name(entry.name + ".lock"), f"the prepared frames of {path.name}"):
        if use_cache and (entry / "meta.json").is_file():
            try:
                return PreparedVideo.load(entry)  # another process may have made it while we waited
            except storage.CorruptEntryError as exc:
                storage.discard(entry, str(exc))
        media = open_media(path, stride=options.stride, max_frames=options.max_frames)
        crops_file = storage.temporary_name(entry.with_name(entry.name + ".crops.npy"))
        try:
            with storage.writing("the prepared frames", crops_file, only_write_failures=True):
                prepared = _process(media, options, progress, crops_file)
            prepared.source = str(path)
            return prepared.save(entry, audio_from=path if media.audio_codec else None, crops_file=crops_file)
        finally:
            storage.remove_quietly(crops_file)
