"""The EG3D in-the-wild crop from five landmarks (docs/method.md, preprocessing).

The official pipeline fits scale and translation of five standard 3D face points to the detected
landmarks (POS least squares, y flipped), scales the image by 300 / s, cuts a 1024 square placed by the
translation, keeps its centre 700 and resizes that to 512. Those steps compose into one scale-and-
translation map, kept per frame as a 2x3 matrix from crop pixels to image pixels; the crop is made
with a single resampling through it. No rotation: the roll stays in the camera.
"""

from __future__ import annotations

import cv2
import numpy as np

# Five standard 3D landmarks (BFM units): image-left eye centre, image-right eye centre, nose tip,
# image-left mouth corner, image-right mouth corner (Deep3DFaceRecon's similarity_Lm3D_all.mat).
STANDARD_5 = np.array(
    [
        [-0.311487, 0.290361, 0.133780],
        [0.309799, 0.289720, 0.131795],
        [0.003253, -0.046179, 0.552442],
        [-0.252169, -0.381339, 0.224057],
        [0.248466, -0.381282, 0.222358],
    ]
)
CANVAS, RESCALE, CENTER, OUTPUT = 1024, 300.0, 700, 512
# Face-mesh indices of the five points: eye corners (averaged), nose tip, mouth corners.
EYE_LEFT_IMAGE, EYE_RIGHT_IMAGE, NOSE_TIP, MOUTH_LEFT_IMAGE, MOUTH_RIGHT_IMAGE = (33, 133), (362, 263), 1, 61, 291


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[5, 2] pixel positions (x right, y down) from face-mesh landmarks [468, >=2]."""
    p = landmarks[:, :2]
    return np.stack(
        [
            p[list(EYE_LEFT_IMAGE)].mean(0),
            p[list(EYE_RIGHT_IMAGE)].mean(0),
            p[NOSE_TIP],
            p[MOUTH_LEFT_IMAGE],
            p[MOUTH_RIGHT_IMAGE],
        ]
    )


def pos_scale_translation(points_2d: np.ndarray, image_height: int) -> tuple[np.ndarray, float]:
    """Deep3DFaceRecon's POS fit: translation t (y-up image coordinates) and scale s."""
    xp = points_2d.astype(np.float64).copy()
    xp[:, 1] = image_height - 1 - xp[:, 1]
    n = len(xp)
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = STANDARD_5
    a[0::2, 3] = 1
    a[1::2, 4:7] = STANDARD_5
    a[1::2, 7] = 1
    k = np.linalg.lstsq(a, xp.reshape(-1), rcond=None)[0]
    scale = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(scale)


def crop_transform(points_2d: np.ndarray, image_width: int, image_height: int) -> np.ndarray:
    """2x3 affine mapping 512-crop pixel coordinates to image pixel coordinates (pixel centres)."""
    t, s = pos_scale_translation(points_2d, image_height)
    s_img = RESCALE / s
    w, h = int(image_width * s_img), int(image_height * s_img)
    left = int(w / 2 - CANVAS / 2 + (t[0] - image_width / 2) * s_img)
    up = int(h / 2 - CANVAS / 2 + (image_height / 2 - t[1]) * s_img)
    offset = (CANVAS - CENTER) // 2
    k = CENTER / OUTPUT  # 512 crop -> 700 crop
    sx, sy = image_width / w, image_height / h  # resized image -> original (PIL's pixel-centre convention)
    # x_img = ((u + 0.5) * k - 0.5 + offset + left + 0.5) * sx - 0.5
    return np.array(
        [
            [k * sx, 0.0, (0.5 * k + offset + left) * sx - 0.5],
            [0.0, k * sy, (0.5 * k + offset + up) * sy - 0.5],
        ]
    )


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[:, :2] @ matrix[:, :2].T + matrix[:, 2]


def warp_crop(image: np.ndarray, transform: np.ndarray, size: int = OUTPUT) -> np.ndarray:
    """Resample the crop through ``transform`` (crop -> image). Shrinking more than 1.5x is pre-filtered."""
    scale = float(transform[0, 0])  # image pixels per crop pixel
    if scale > 1.5:
        factor = 1.0 / scale
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        rescale = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1]])
        transform = (rescale @ np.vstack([transform, [0, 0, 1]]))[:2]
        image = small
    return cv2.warpAffine(
        image, transform, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101
    )
