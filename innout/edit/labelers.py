"""Labellers: image -> attribute score, for learning edit directions.

A labeller is any callable ``labeler(images) -> scores`` taking RGB uint8 images [H, W, 3] and giving
one float per image (NaN where it cannot tell, e.g. no face found). Shipped, offline:

- ``LandmarkLabeler`` on MediaPipe's face mesh (models inside the mediapipe package):
  ``smile`` (mouth width over the eye-corner distance, plus how far the mouth corners sit above the
  lips' centre), ``mouth_open`` (inner-lip gap over mouth width; "surprise"), ``eyes_open`` (eye
  height over eye width), ``yaw`` and ``pitch`` (head rotation in degrees, from the same rigid fit
  preprocessing uses).
- ``ImageLabeler``: ``brightness`` (mean luma) and ``warmth`` (mean red minus blue). They need no face,
  so they also give directions for the untrained demo generator, whose images are not faces.
- ``CLIPLabeler`` (``innout.edit.clip``) with user-supplied CLIP weights and a text prompt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Labeler = Callable[[Sequence[np.ndarray]], np.ndarray]

# MediaPipe face-mesh indices (468 points). "Left"/"right" are as seen in the image.
MOUTH_CORNERS = (61, 291)
OUTER_LIPS = (0, 17)  # upper and lower lip centre, outer edge
INNER_LIPS = (13, 14)
EYE_CORNERS = (33, 263)  # outer corners
EYES = ((33, 133, 159, 145), (263, 362, 386, 374))  # outer, inner, upper lid, lower lid
LANDMARK_ATTRIBUTES = ("smile", "mouth_open", "eyes_open", "yaw", "pitch")
IMAGE_ATTRIBUTES = ("brightness", "warmth")


def _dist(p: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a, :2] - p[b, :2]))


def smile_score(p: np.ndarray) -> float:
    iod = _dist(p, *EYE_CORNERS)
    width = _dist(p, *MOUTH_CORNERS) / iod
    lips_centre_y = (p[OUTER_LIPS[0], 1] + p[OUTER_LIPS[1], 1]) / 2
    corners_y = (p[MOUTH_CORNERS[0], 1] + p[MOUTH_CORNERS[1], 1]) / 2
    return width + float(lips_centre_y - corners_y) / iod  # image y grows downwards


def mouth_open_score(p: np.ndarray) -> float:
    return _dist(p, *INNER_LIPS) / _dist(p, *MOUTH_CORNERS)


def eyes_open_score(p: np.ndarray) -> float:
    return float(np.mean([_dist(p, up, low) / _dist(p, outer, inner) for outer, inner, up, low in EYES]))


def head_angles(p: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of the face's forward axis in the camera frame; 0, 0 is facing the camera."""
    from ..preprocess.camera import head_rotation

    forward = head_rotation(p) @ np.array([0.0, 0.0, 1.0])  # world +z (the face's front) in camera axes
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], -forward[2]))
    return yaw, pitch


SCORES: dict[str, Callable[[np.ndarray], float]] = {
    "smile": smile_score,
    "mouth_open": mouth_open_score,
    "eyes_open": eyes_open_score,
    "yaw": lambda p: head_angles(p)[0],
    "pitch": lambda p: head_angles(p)[1],
}


class LandmarkLabeler:
    """Scores an attribute from the face mesh of the largest face in each image (NaN without a face)."""

    def __init__(self, attribute: str, *, min_confidence: float = 0.5) -> None:
        if attribute not in SCORES:
            raise ValueError(f"landmark labeller attribute must be one of {LANDMARK_ATTRIBUTES}, got {attribute!r}")
        from ..preprocess.landmarks import FaceMeshTracker

        self.name = attribute
        self.score = SCORES[attribute]
        self.tracker = FaceMeshTracker(video=False, max_faces=1, min_confidence=min_confidence)

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        faces = self.tracker.detect_all(image)
        if not faces:
            return None
        return max(faces, key=lambda f: np.ptp(f[:, 0]) * np.ptp(f[:, 1]))

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = np.full(len(images), np.nan)
        for i, image in enumerate(images):
            points = self.landmarks(image)
            if points is not None:
                out[i] = self.score(points)
        return out

    def close(self) -> None:
        self.tracker.close()


class ImageLabeler:
    """Whole-image colour statistics in [0, 1] (brightness) or [-1, 1] (warmth)."""

    def __init__(self, attribute: str) -> None:
        if attribute not in IMAGE_ATTRIBUTES:
            raise ValueError(f"image attribute must be one of {IMAGE_ATTRIBUTES}, got {attribute!r}")
        self.attribute = self.name = attribute

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        scores = []
        for image in images:
            rgb = np.asarray(image, dtype=np.float64)[..., :3] / 255.0
            if self.attribute == "brightness":
                scores.append(float((rgb @ np.array([0.299, 0.587, 0.114])).mean()))
            else:
                scores.append(float((rgb[..., 0] - rgb[..., 2]).mean()))
        return np.asarray(scores)


def make_labeler(spec: str, *, clip_weights: str | None = None) -> Labeler:
    """``smile`` / ``mouth_open`` / ``eyes_open`` / ``yaw`` / ``pitch``, ``brightness`` / ``warmth``, or
    ``clip:TEXT`` (needs ``clip_weights``): the CLI's ``--labeler`` values."""
    if spec in IMAGE_ATTRIBUTES:
        return ImageLabeler(spec)
    if spec.startswith("clip:"):
        if not clip_weights:
            raise ValueError("the CLIP labeller needs CLIP weights: pass --clip-weights FOLDER (see the README)")
        from .clip import CLIPLabeler

        return CLIPLabeler(clip_weights, spec[len("clip:") :])
    return LandmarkLabeler(spec)
