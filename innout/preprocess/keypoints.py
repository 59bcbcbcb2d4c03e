"""The five crop points of a tracked face: MTCNN's where it finds the face, face-mesh points otherwise.

The face mesh tracks the face (and gives pose, masks and landmarks); the EG3D crop is defined by MTCNN's
five points (see ``mtcnn``). Per frame, the MTCNN detection whose points lie nearest the mesh's five
points is taken. In a video, MTCNN's points jitter by several pixels from frame to frame, while the mesh
is steady but framed differently (eye corners instead of pupils, ...). So the crop uses the mesh's points
moved by the MTCNN-minus-mesh offset, measured in a face frame (x along the eye line, unit = eye
distance), interpolated where MTCNN misses and smoothed over time. Without MTCNN's
weights, the mesh's points are used as they are.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import align
from .landmarks import FaceMeshTracker
from .mtcnn import MTCNN, Detection, MTCNNWeightsError
from .smoothing import gaussian_smooth

CONFIDENT = 0.9  # EG3D's batch_mtcnn.py keeps detections above this confidence
MATCH_TOLERANCE = 0.35  # mean point distance, in eye distances, for an MTCNN face to be the tracked one


def load_detector() -> MTCNN | None:
    """MTCNN, or None with a warning when its weights are not installed (mesh points are used)."""
    try:
        return MTCNN()
    except MTCNNWeightsError as exc:
        warnings.warn(f"{exc}; the crop falls back to face-mesh points (a few pixels off EG3D's)", stacklevel=2)
        return None


def face_frame(points5: np.ndarray) -> tuple[np.ndarray, float]:
    """(rotation [2, 2] with the eye line as x, eye distance) of five points."""
    axis = points5[1] - points5[0]
    dist = float(np.linalg.norm(axis))
    c, s = axis / max(dist, 1e-9)
    return np.array([[c, -s], [s, c]]), dist


def matching_points(detections: list[Detection], mesh5: np.ndarray) -> np.ndarray | None:
    """The points of the detection that is the mesh's face (nearest, within ``MATCH_TOLERANCE``)."""
    _, eye_dist = face_frame(mesh5)
    best, best_err = None, MATCH_TOLERANCE
    for det in detections:
        err = float(np.linalg.norm(det.points - mesh5, axis=1).mean()) / max(eye_dist, 1e-9)
        if err < best_err:
            best, best_err = det.points, err
    return best


def resolve(
    tracker: FaceMeshTracker, detector: MTCNN, image: np.ndarray, landmarks: np.ndarray | None, *, fast: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(face mesh, MTCNN's five points) of one image, each None when not found.

    The mesh tells which face MTCNN's points belong to. When they disagree (heavy face paint can pull
    the mesh model onto half a face) and MTCNN is confident, the mesh is redone inside MTCNN's box and
    kept if it then agrees. ``fast`` first tries only the pyramid levels that fit the mesh's size."""
    detections = None
    if landmarks is not None:
        size = float(np.ptp(landmarks[:, :2], 0).max()) if fast else None
        detections = detector.detect(image, face_size=size)
        points = matching_points(detections, align.five_points(landmarks))
        if points is not None:
            return landmarks, points
        if fast:  # only the coarse levels were run: look again with the whole pyramid
            detections = None
    if detections is None:
        detections = detector.detect(image)
    detections = [d for d in detections if d.score >= CONFIDENT]
    if landmarks is not None:  # the confident face nearest the mesh; else the largest, as EG3D picks
        centre = landmarks[:, :2].mean(0)
        detections.sort(key=lambda d: float(np.linalg.norm(d.points.mean(0) - centre)))
    else:
        detections.sort(key=lambda d: -float(d.box[2] - d.box[0] + d.box[3] - d.box[1]))
    for det in detections[:1]:
        mesh = tracker.mesh_in_box(image, tuple(det.box))
        if mesh is not None and matching_points([det], align.five_points(mesh)) is not None:
            return mesh, det.points
    return landmarks, None


def crop_points(mesh5: np.ndarray, mtcnn5: np.ndarray, offset_smoothing: float = 0.0) -> tuple[np.ndarray, int]:
    """Five crop points per frame [T, 5, 2] and how many frames MTCNN found.

    ``mesh5`` [T, 5, 2] (NaN where no face), ``mtcnn5`` [T, 5, 2] (NaN where MTCNN missed). The points
    are the mesh's plus the MTCNN-minus-mesh offset in the face frame. That offset is interpolated over
    frames where MTCNN missed and, with ``offset_smoothing`` (a Gaussian sigma in frames), smoothed over
    time: the crop then keeps MTCNN's framing without its frame-to-frame jitter. With 0 and MTCNN found,
    the points are exactly MTCNN's."""
    has_mesh = ~np.isnan(mesh5[:, 0, 0])
    has_mtcnn = ~np.isnan(mtcnn5[:, 0, 0]) & has_mesh
    out = mesh5.copy()
    if not has_mtcnn.any():
        return out, 0
    frames = [face_frame(m) if ok else None for m, ok in zip(mesh5, has_mesh, strict=True)]
    with_mesh, with_mtcnn = np.flatnonzero(has_mesh), np.flatnonzero(has_mtcnn)
    local = np.stack([(mtcnn5[i] - mesh5[i]) @ frames[i][0] / frames[i][1] for i in with_mtcnn])  # rot.T per row
    offsets = np.stack(
        [np.interp(with_mesh, with_mtcnn, local[:, k, c]) for k in range(5) for c in range(2)], -1
    ).reshape(len(with_mesh), 5, 2)
    offsets = gaussian_smooth(offsets, offset_smoothing)
    for i, offset in zip(with_mesh, offsets, strict=True):
        rot, dist = frames[i]
        out[i] = mesh5[i] + dist * offset @ rot.T
    return out, len(with_mtcnn)
