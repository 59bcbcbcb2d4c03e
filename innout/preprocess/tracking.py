"""Tracking the main face through a video and cutting its crops: the two streaming passes of ``prepare``.

The first pass keeps only landmarks and crop points (about 12 KB a frame); smoothing and the crop transforms
need all of them. The second pass warps each kept frame into its 512x512 crop, which goes straight into the
cache entry's ``crops.npy`` on disk (768 KB a frame, never held in memory). ``align_image`` does the same for
one photo.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import storage
from . import align, camera, keypoints
from .landmarks import FaceMeshTracker
from .media import InputError, MediaSource
from .prepared import AlignedFace, NoFaceError, PreparedVideo, PrepareOptions, frame_ranges
from .smoothing import fill_gaps, find_gaps, gaussian_smooth


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


MIN_FACE_PIXELS = 32  # below this, an image cannot hold a face the detectors find (their smallest is ~20 px)


def _segments(valid: np.ndarray) -> list[tuple[int, int]]:
    return find_gaps(~valid)  # runs of valid frames


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


def process_media(
    media: MediaSource, options: PrepareOptions, progress: bool, crops_file: Path | None = None
) -> PreparedVideo:
    """Two streaming passes over ``media``: landmarks, then crops (into ``crops_file`` when given)."""
    tracks = _track(media, options, progress)
    raw, mesh5, mtcnn5 = tracks.raw, tracks.mesh5, tracks.mtcnn5
    h, w = tracks.frame_size
    found = ~np.isnan(raw[:, 0, 0])
    missing_source = [tracks.indices[i] for i in np.flatnonzero(~found)]
    if found.mean() < options.min_face_fraction:
        if len(found) == 1:  # a photo: no frame numbers to list
            small = f" (it is {w}x{h} pixels: too small to hold a face)" if min(h, w) < MIN_FACE_PIXELS else ""
            raise NoFaceError(f"{media.source.name}: no face found in the photo{small}", missing_source)
        what = (
            "no face found in any frame"
            if not found.any()
            else f"a face was found in only {found.sum()} of {len(found)} frames"
        )
        raise NoFaceError(
            f"{media.source.name}: {what}; frames without a face: {frame_ranges(missing_source)}", missing_source
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


