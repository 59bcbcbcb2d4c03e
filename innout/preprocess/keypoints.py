"""The five crop points of a tracked face: MTCNN's where it finds the face, face-mesh points otherwise.

The face mesh tracks the face (and gives pose, masks and landmarks); the EG3D crop is defined by MTCNN's
five points (see ``mtcnn``). Per frame, the MTCNN detection whose points lie nearest the mesh's five
points is taken. Where MTCNN misses the face (or its weights are not installed), the mesh's points are
used, moved by the median MTCNN-minus-mesh offset of that clip's other frames, measured in a face frame
(origin between the eyes, x along the eye line, unit = eye distance), so the crop does not jump between
the two sources.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import align
from .landmarks import FaceMeshTracker
from .mtcnn import MTCNN, Detection, MTCNNWeightsError

CONFIDENT = 0.9  # EG3D's batch_mtcnn.py keeps detections above this confidence
MATCH_TOLERANCE = 0.35  # mean point distance, in eye distances, for an MTCNN face to be the tracked one


def load_detector() -> MTCNN | None:
    """MTCNN, or None with a warning when its weights are not installed (mesh points are used)."""
    try:
        return MTCNN()
    except MTCNNWeightsError as exc:
        warnings.warn(f"{exc}; the crop falls back to face-mesh points (a few pixels off EG3D's)", stacklevel=2)
        return None


def face_frame(points5: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(origin, rotation [2, 2] with the eye line as x, eye distance) of five points."""
    left, right = points5[0], points5[1]
    axis = right - left
    dist = float(np.linalg.norm(axis))
    c, s = axis / max(dist, 1e-9)
    return (left + right) / 2, np.array([[c, -s], [s, c]]), dist


def matching_points(detections: list[Detection], mesh5: np.ndarray) -> np.ndarray | None:
    """The points of the detection that is the mesh's face (nearest, within ``MATCH_TOLERANCE``)."""
    _, _, eye_dist = face_frame(mesh5)
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
    if landmarks is not None:
        mesh5 = align.five_points(landmarks)
        size = float(np.ptp(landmarks[:, :2], 0).max()) if fast else None
        points = matching_points(detector.detect(image, face_size=size), mesh5)
        if points is not None:
            return landmarks, points
    detections = [d for d in detector.detect(image) if d.score >= CONFIDENT]
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


def crop_points(mesh5: np.ndarray, mtcnn5: np.ndarray) -> tuple[np.ndarray, int]:
    """Five crop points per frame [T, 5, 2] and how many frames came from MTCNN.

    ``mesh5`` [T, 5, 2] (NaN where no face), ``mtcnn5`` [T, 5, 2] (NaN where MTCNN missed)."""
    has_mesh = ~np.isnan(mesh5[:, 0, 0])
    has_mtcnn = ~np.isnan(mtcnn5[:, 0, 0]) & has_mesh
    out = mesh5.copy()
    out[has_mtcnn] = mtcnn5[has_mtcnn]
    missing = np.flatnonzero(has_mesh & ~has_mtcnn)
    if has_mtcnn.any() and len(missing):
        local = []
        for i in np.flatnonzero(has_mtcnn):
            origin, rot, dist = face_frame(mesh5[i])
            local.append((mtcnn5[i] - mesh5[i]) @ rot / dist)  # rot.T applied to row vectors
        offset = np.median(np.stack(local), axis=0)
        for i in missing:
            origin, rot, dist = face_frame(mesh5[i])
            out[i] = mesh5[i] + dist * offset @ rot.T
    return out, int(has_mtcnn.sum())
