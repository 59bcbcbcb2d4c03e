"""Putting an edited 512 crop back into its original frame: inverse warp, soft face mask, feathered seam."""

from __future__ import annotations

import cv2
import numpy as np

from .align import invert_affine

# Face-mesh landmarks on the outline of the face (forehead, temples, jaw), in order around the face.
FACE_OVAL = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
]  # fmt: skip


def face_mask(landmarks_crop: np.ndarray, size: int = 512, *, grow: float = 0.04, feather: float = 0.03) -> np.ndarray:
    """Soft mask [size, size] in [0, 1]: the face-mesh outline (``FACE_OVAL`` of the 468 points), grown by
    ``grow`` and feathered with a Gaussian of ``feather`` (both as fractions of the crop size)."""
    return outline_mask(landmarks_crop[FACE_OVAL, :2], size, grow=grow, feather=feather)


def outline_mask(outline: np.ndarray, size: int = 512, *, grow: float = 0.04, feather: float = 0.03) -> np.ndarray:
    """``face_mask`` from the outline points [K, 2] alone (what a scene file keeps)."""
    mask = np.zeros((size, size), np.float32)
    hull = cv2.convexHull(np.asarray(outline, dtype=np.float32))
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0)
    if grow > 0:
        k = max(1, int(grow * size)) | 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather * size)
    return np.clip(mask, 0, 1)


def paste_back(frame: np.ndarray, crop: np.ndarray, transform: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend ``crop`` (512 RGB uint8) into ``frame`` through ``transform`` (crop -> frame pixels), weighted
    by ``mask`` (crop-sized, in [0, 1]). Pixels outside the mask keep their original values exactly."""
    h, w = frame.shape[:2]
    to_frame = invert_affine(transform)  # frame -> crop, as warpAffine's inverse map wants
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(crop, to_frame, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), to_frame, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    alpha = np.clip(alpha, 0, 1)[..., None]
    out = frame.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    untouched = alpha[..., 0] <= 0
    out[untouched] = frame[untouched]
    return out


def frame_mask(mask: np.ndarray, transform: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """The crop mask carried into frame pixels (for measuring a paste-back inside the face)."""
    h, w = frame_shape
    warped = cv2.warpAffine(
        mask.astype(np.float32), invert_affine(transform), (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    return np.clip(warped, 0, 1)
