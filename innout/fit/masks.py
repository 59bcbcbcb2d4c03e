"""OOD masks for the semi-supervised fit: read them, or propagate one first-frame mask through the video.

``propagate_mask`` follows dense optical flow (OpenCV's Farneback) between consecutive aligned crops:
each frame's mask is the previous mask warped along the backward flow, so an object drawn once on
frame 0 follows the face's motion. The crops are aligned, so the motion left is small. The fit's default adds
the head's geometry (``innout.fit.mask_warp``): a propagator is any ``(crops, first) -> masks`` function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..frames import list_images


class MaskError(UserError, ValueError):
    """An OOD mask that cannot be used (unreadable, wrong size, empty, wrong count)."""


Propagator = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (uint8 crops [F, H, W, 3], bool [H, W]) -> [F, H, W]


def read_mask(path: str | os.PathLike, size: int) -> np.ndarray:
    """A mask image -> bool [size, size] (any nonzero pixel, or alpha, marks the OOD object)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MaskError(f"cannot read the mask image {path}")
    if image.ndim == 3:
        image = image[..., 3] if image.shape[2] == 4 else image.max(axis=2)
    if image.shape != (size, size):
        raise MaskError(f"mask {path} is {image.shape[1]}x{image.shape[0]}; it must match the {size}x{size} crops")
    return image > 127


def propagate_mask(crops: np.ndarray, first: np.ndarray) -> np.ndarray:
    """bool masks [F, H, W] following ``first`` (frame 0) through uint8 crops [F, H, W, 3]."""
    if first.shape != crops.shape[1:3]:
        raise MaskError(f"mask shape {first.shape} does not match the crops {crops.shape[1:3]}")
    masks = [first.astype(bool)]
    h, w = first.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    previous = cv2.cvtColor(np.asarray(crops[0]), cv2.COLOR_RGB2GRAY)
    for t in range(1, len(crops)):
        current = cv2.cvtColor(np.asarray(crops[t]), cv2.COLOR_RGB2GRAY)
        # flow from the current frame back to the previous one: where each current pixel came from
        flow = cv2.calcOpticalFlowFarneback(current, previous, None, 0.5, 4, 21, 3, 5, 1.1, 0)
        warped = cv2.remap(
            masks[-1].astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        masks.append(warped > 0.5)
        previous = current
    return np.stack(masks)


def load_masks(path: str | os.PathLike, crops: np.ndarray, propagate: Propagator | None = None) -> np.ndarray:
    """Masks for every crop from one image (frame 0's mask, propagated by ``propagate``, default
    ``propagate_mask``) or a folder of one per frame."""
    path = Path(path)
    size = crops.shape[1]
    if path.is_dir():
        files = list_images(path)
        if len(files) != len(crops):
            raise MaskError(f"{path} holds {len(files)} mask images for {len(crops)} frames")
        masks = np.stack([read_mask(f, size) for f in files])
    elif path.is_file():
        masks = (propagate or propagate_mask)(crops, read_mask(path, size))
    else:
        raise MaskError(f"no mask image or folder at {path}")
    if not masks.any():
        raise MaskError(f"the mask {path} marks no pixel as the OOD object")
    return masks


def resolve_masks(
    masks: str | os.PathLike | np.ndarray, crops: np.ndarray, propagate: Propagator | None = None
) -> np.ndarray:
    """bool masks [F, H, W] for uint8 crops [F, H, W, 3] from: a mask image (frame 0's, propagated) or a
    folder of one per frame, a [H, W] array (frame 0's, propagated), or a [F, H, W] array (nonzero = OOD).
    ``propagate``: how frame 0's mask reaches the others (default ``propagate_mask``, optical flow)."""
    if not isinstance(masks, np.ndarray):
        return load_masks(masks, crops, propagate)
    if masks.ndim == 2:
        if masks.shape != crops.shape[1:3]:
            raise MaskError(f"masks are {masks.shape[1]}x{masks.shape[0]}; they must match the crops")
        out = (propagate or propagate_mask)(crops, masks > 0)
    elif masks.ndim == 3 and len(masks) == len(crops):
        out = masks > 0
    else:
        raise MaskError(f"masks of shape {masks.shape} fit neither one frame nor all {len(crops)} frames")
    if out.shape[1:] != crops.shape[1:3]:
        raise MaskError(f"masks are {out.shape[2]}x{out.shape[1]}; they must match the crops")
    if not out.any():
        raise MaskError("the mask marks no pixel as the OOD object")
    return out
