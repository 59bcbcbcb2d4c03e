"""Head pose from the face mesh, expressed as EG3D's 25-d camera label (docs/method.md, preprocessing).

The rigid template is MediaPipe's canonical face (468 points, ``data/canonical_face_468.txt``), carried
once into the frame of the five standard 3D points that define EG3D's world (Deep3DFaceRecon's BFM
frame: y up, the face looking towards +z). Per frame, a weak-perspective fit (rotation, scale, 2D
translation, Huber loss against expression; MediaPipe's depth estimates are not used) gives the rotation
from world to camera, roll included. The fit uses the mesh vertices of the 68-point layout (jaw line,
brows, nose, eyes, lips), the landmarks the official pose estimator (Deep3DFaceRecon) is trained to agree
with, rather than all 468: the dense cheek and forehead vertices follow the canonical face's shape more
than the person's. On the two photos with official labels this moved the error from 5.8 / 1.1 to
4.5 / 0.4 degrees, and the pose is no noisier on video. The camera is then placed on the sphere of radius 2.7
around the origin, looking along its optical axis through the pivot (0, 0, 0.2), with EG3D's focal
4.2647 and principal point 0.5.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import least_squares

from .align import EYE_LEFT_IMAGE, EYE_RIGHT_IMAGE, MOUTH_LEFT_IMAGE, MOUTH_RIGHT_IMAGE, NOSE_TIP, STANDARD_5

FOCAL = 4.2647
RADIUS = 2.7
PIVOT = np.array([0.0, 0.0, 0.2])
CANONICAL_FILE = Path(__file__).with_name("data") / "canonical_face_468.txt"
# Mesh vertices standing for the 68-point layout, in its order: jaw (17, image-left ear to image-right
# ear), brows (5 + 5), nose bridge (4) and base (5), eyes (6 + 6), outer lips (12), inner lips (8).
POSE_LANDMARKS = np.array(
    [234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
     70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
     168, 197, 5, 4, 98, 97, 2, 326, 327,
     33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
     61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178]
)  # fmt: skip
ROBUST_SCALE = 0.02  # residuals beyond 2% of the face's size are treated as outliers (Huber)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares rotation R, scale s, translation t with dst ~ s R src + t (Umeyama)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ d @ vt
    scale = float((sv * np.diag(d)).sum() / (a**2).sum() * len(src))
    return rot, scale, mu_d - scale * rot @ mu_s


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """The canonical face [468, 3] in EG3D's world frame (BFM units), fitted on the five standard points."""
    c = np.loadtxt(CANONICAL_FILE)
    five = np.stack(
        [
            c[list(EYE_LEFT_IMAGE)].mean(0),
            c[list(EYE_RIGHT_IMAGE)].mean(0),
            c[NOSE_TIP],
            c[MOUTH_LEFT_IMAGE],
            c[MOUTH_RIGHT_IMAGE],
        ]
    )
    rot, scale, t = similarity_fit(five, STANDARD_5)
    return (scale * (rot @ c.T)).T + t


def head_rotation(landmarks: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
    """Rotation [3, 3] from world to the OpenCV camera (x right, y down, z forward) for one face mesh."""
    full_model = canonical_face()
    if init is None:
        # closed-form start: 3D similarity fit using MediaPipe's depth, then refined without it
        init, _, _ = similarity_fit(full_model, landmarks[: len(full_model)])
    model, observed = full_model[POSE_LANDMARKS], landmarks[POSE_LANDMARKS, :2]
    model_c = model - model.mean(0)
    obs_c = observed - observed.mean(0)
    scale0 = np.linalg.norm(obs_c) / np.linalg.norm((model_c @ init.T)[:, :2])

    face_size = float(np.sqrt((obs_c**2).sum(1).mean()))

    def residual(x: np.ndarray) -> np.ndarray:
        rot = cv2.Rodrigues(x[:3])[0]
        return (x[3] * (model_c @ rot.T)[:, :2] + x[4:6] - obs_c).ravel() / face_size

    x0 = np.concatenate([cv2.Rodrigues(init)[0].ravel(), [scale0, 0.0, 0.0]])
    # Huber loss: points moved by expression (a wide smile, an open mouth) count less than rigid ones
    fit = least_squares(residual, x0, method="trf", loss="huber", f_scale=ROBUST_SCALE)
    return cv2.Rodrigues(fit.x[:3])[0]


def cam2world_from_rotation(world_to_camera: np.ndarray) -> np.ndarray:
    """cam2world [4, 4]: camera axes from the head rotation, position on the radius-2.7 sphere such that
    the optical axis passes through the pivot."""
    rot = world_to_camera.T  # columns: camera x, y, z axes in world coordinates
    forward = rot[:, 2]
    b = float(PIVOT @ forward)
    step = b + np.sqrt(b * b - PIVOT @ PIVOT + RADIUS**2)
    c2w = np.eye(4)
    c2w[:3, :3] = rot
    c2w[:3, 3] = PIVOT - step * forward
    return c2w


def camera_label(world_to_camera: np.ndarray, focal: float = FOCAL) -> np.ndarray:
    """EG3D's 25 numbers: cam2world (row-major) + normalised intrinsics."""
    k = np.array([[focal, 0, 0.5], [0, focal, 0.5], [0, 0, 1.0]])
    return np.concatenate([cam2world_from_rotation(world_to_camera).reshape(-1), k.reshape(-1)]).astype(np.float32)


def smooth_rotations(rotations: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-lag temporal smoothing of rotations [T, 3, 3] (Gaussian on rotation vectors relative to the
    mean rotation, then back to matrices)."""
    from .smoothing import gaussian_smooth

    if sigma <= 0 or len(rotations) < 2:
        return rotations.copy()
    u, _, vt = np.linalg.svd(rotations.mean(0))
    mean = u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt
    rel = np.stack([cv2.Rodrigues(mean.T @ r)[0].ravel() for r in rotations])
    rel = gaussian_smooth(rel, sigma)
    return np.stack([mean @ cv2.Rodrigues(v)[0] for v in rel])


def viewing_direction(label: np.ndarray) -> np.ndarray:
    return np.asarray(label[:16]).reshape(4, 4)[:3, 2]


def angle_between_cameras(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between the viewing directions of two 25-d labels."""
    da, db = viewing_direction(a), viewing_direction(b)
    return float(np.degrees(np.arccos(np.clip(da @ db / np.linalg.norm(da) / np.linalg.norm(db), -1, 1))))
