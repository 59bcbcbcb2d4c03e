"""MTCNN's five landmarks, the ones EG3D's official crop is computed from (docs/method.md, preprocessing).

EG3D's ``batch_mtcnn.py`` detects faces with the MTCNN cascade (Zhang et al. 2016: P-Net on an image
pyramid, then R-Net and O-Net on square crops) and writes O-Net's five points. Its eye points are close to
the pupils and its mouth corners sit where O-Net puts them, which differ from any choice of face-mesh
vertices by a few pixels, and that difference moves the crop. Running the same networks reproduces the
official points. The weights are the original networks' (as converted to PyTorch state dicts and shipped
inside the ``facenet-pytorch`` wheel, installed with ``--no-deps`` only for these files; the package itself
is never imported). This module holds its own implementation of the cascade.

Conventions kept from the reference cascade: pixels normalised as (v - 127.5) / 128, pyramid factor 0.709
from a 20-pixel smallest face, thresholds 0.6 / 0.7 / 0.7, boxes in 1-based inclusive pixel coordinates
(so the landmark of a box is ``x1 - 1 + w * p``), squared boxes between stages, area resampling of crops.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import UserError

INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0 (only its MTCNN weight files are used)"
MIN_FACE, PYRAMID_FACTOR, THRESHOLDS = 20, 0.709, (0.6, 0.7, 0.7)
FINEST_CELLS = 4  # with a face size given, skip pyramid levels where it spans more than 4 12-pixel cells


class MTCNNWeightsError(UserError, RuntimeError):
    """The MTCNN weight files are not installed."""


def weights_dir() -> Path:
    """The folder of ``pnet.pt``, ``rnet.pt``, ``onet.pt`` inside the installed facenet-pytorch wheel."""
    spec = importlib.util.find_spec("facenet_pytorch")  # located, never imported (it needs torchvision)
    if spec is None or spec.origin is None:
        raise MTCNNWeightsError(f"MTCNN landmarks need its weights: {INSTALL_HINT}")
    folder = Path(spec.origin).parent / "data"
    if not all((folder / f"{n}.pt").is_file() for n in ("pnet", "rnet", "onet")):
        raise MTCNNWeightsError(f"MTCNN weight files missing in {folder}: {INSTALL_HINT}")
    return folder


class _Net(nn.Module):
    """A stage: a conv/PReLU/max-pool trunk, an optional dense layer, and its heads.

    Module names follow the state dicts' keys (conv1, prelu1, ...). Dense layers read the feature map
    flattened in (width, height, channel) order, the order the original networks were trained with."""

    def __init__(self, trunk: list[tuple[str, nn.Module]], dense: tuple[int, int] | None, heads: dict[str, int]):
        super().__init__()
        for name, module in trunk:
            self.add_module(name, module)
        self.trunk_names = [name for name, _ in trunk]
        self.dense_name = None
        if dense is not None:
            idx = sum(1 for n in self.trunk_names if n.startswith("conv")) + 1
            self.dense_name = f"dense{idx}"
            self.add_module(self.dense_name, nn.Linear(*dense))
            self.add_module(f"prelu{idx}", nn.PReLU(dense[1]))
            self.dense_prelu = f"prelu{idx}"
        for name, (c_in, c_out) in heads.items():
            self.add_module(name, nn.Linear(c_in, c_out) if dense is not None else nn.Conv2d(c_in, c_out, 1))
        self.head_names = list(heads)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for name in self.trunk_names:
            x = getattr(self, name)(x)
        if self.dense_name is not None:
            x = x.permute(0, 3, 2, 1).flatten(1)
            x = getattr(self, self.dense_prelu)(getattr(self, self.dense_name)(x))
        out = [getattr(self, name)(x) for name in self.head_names]
        out[0] = torch.softmax(out[0], dim=1)[:, 1]  # face probability
        return out


def _pool(k: int) -> nn.MaxPool2d:
    return nn.MaxPool2d(k, 2, ceil_mode=True)


def build_nets() -> tuple[_Net, _Net, _Net]:
    """P-Net (fully convolutional, 12-pixel cells), R-Net (24x24 input) and O-Net (48x48 input)."""
    pnet = _Net(
        [("conv1", nn.Conv2d(3, 10, 3)), ("prelu1", nn.PReLU(10)), ("pool1", _pool(2)),
         ("conv2", nn.Conv2d(10, 16, 3)), ("prelu2", nn.PReLU(16)),
         ("conv3", nn.Conv2d(16, 32, 3)), ("prelu3", nn.PReLU(32))],
        None, {"conv4_1": (32, 2), "conv4_2": (32, 4)},
    )  # fmt: skip
    rnet = _Net(
        [("conv1", nn.Conv2d(3, 28, 3)), ("prelu1", nn.PReLU(28)), ("pool1", _pool(3)),
         ("conv2", nn.Conv2d(28, 48, 3)), ("prelu2", nn.PReLU(48)), ("pool2", _pool(3)),
         ("conv3", nn.Conv2d(48, 64, 2)), ("prelu3", nn.PReLU(64))],
        (576, 128), {"dense5_1": (128, 2), "dense5_2": (128, 4)},
    )  # fmt: skip
    onet = _Net(
        [("conv1", nn.Conv2d(3, 32, 3)), ("prelu1", nn.PReLU(32)), ("pool1", _pool(3)),
         ("conv2", nn.Conv2d(32, 64, 3)), ("prelu2", nn.PReLU(64)), ("pool2", _pool(3)),
         ("conv3", nn.Conv2d(64, 64, 3)), ("prelu3", nn.PReLU(64)), ("pool3", _pool(2)),
         ("conv4", nn.Conv2d(64, 128, 2)), ("prelu4", nn.PReLU(128))],
        (1152, 256), {"dense6_1": (256, 2), "dense6_2": (256, 4), "dense6_3": (256, 10)},
    )  # fmt: skip
    return pnet, rnet, onet


@lru_cache(maxsize=1)
def load_nets(folder: str | None = None) -> tuple[_Net, _Net, _Net]:
    root = Path(folder) if folder else weights_dir()
    nets = build_nets()
    for name, net in zip(("pnet", "rnet", "onet"), nets, strict=True):
        state = torch.load(root / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval().requires_grad_(False)
    return nets


@dataclass
class Detection:
    box: np.ndarray  # [4] x1, y1, x2, y2 in 0-based pixel coordinates (x2, y2 exclusive)
    score: float
    points: np.ndarray  # [5, 2] (x, y): image-left eye, image-right eye, nose, mouth left, mouth right


def _nms(boxes: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression on rows [x1, y1, x2, y2, score, ...]."""
    if len(boxes) == 0:
        return np.zeros(0, int)
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)
    keep = []
    while len(order):
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.array(keep, int)


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out[:, 0:4] = boxes[:, 0:4] + reg * np.stack([w, h, w, h], 1)
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Square crops of 1-based inclusive integer boxes (zero outside the image), resized to ``size``."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(int)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx, sy = max(x1 - 1, 0), max(y1 - 1, 0)
        ex, ey = min(x2, w), min(y2, h)
        if ex > sx and ey > sy:
            patch[sy - (y1 - 1) : ey - (y1 - 1), sx - (x1 - 1) : ex - (x1 - 1)] = image[sy:ey, sx:ex]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return _normalise(out)


def _normalise(batch_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((batch_hwc.astype(np.float32) - 127.5) * 0.0078125).permute(0, 3, 1, 2).contiguous()


class MTCNN:
    """The MTCNN cascade on RGB uint8 images; ``detect`` returns faces best first."""

    def __init__(
        self, folder: str | Path | None = None, *, min_face: int = MIN_FACE, thresholds=THRESHOLDS
    ) -> None:
        self.pnet, self.rnet, self.onet = load_nets(str(folder) if folder else None)
        self.min_face, self.thresholds = min_face, thresholds

    def _stage1(self, image: np.ndarray, face_size: float | None) -> np.ndarray:
        h, w = image.shape[:2]
        scale = 12.0 / self.min_face
        side = min(h, w) * scale
        found = []
        while side >= 12:
            if face_size is not None and face_size * scale > FINEST_CELLS * 12:
                scale *= PYRAMID_FACTOR  # too fine a level for a face this big: it cannot find it whole
                side *= PYRAMID_FACTOR
                continue
            hs, ws = int(math.ceil(h * scale)), int(math.ceil(w * scale))
            x = _normalise(cv2.resize(image, (ws, hs), interpolation=cv2.INTER_AREA)[None])
            with torch.no_grad():
                prob, reg = self.pnet(x)
            prob, reg = prob[0].numpy(), reg[0].numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys):
                q1x, q1y = np.fix((2 * xs + 1) / scale), np.fix((2 * ys + 1) / scale)
                q2x, q2y = np.fix((2 * xs + 12) / scale), np.fix((2 * ys + 12) / scale)
                boxes = np.stack([q1x, q1y, q2x, q2y, prob[ys, xs], *reg[:, ys, xs]], 1)
                found.append(boxes[_nms(boxes, 0.5)])
            scale *= PYRAMID_FACTOR
            side *= PYRAMID_FACTOR
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[_nms(boxes, 0.7)]
        boxes = _regress(boxes[:, :5], boxes[:, 5:9], plus_one=False)
        return np.fix(_square(boxes))

    def detect(self, image_rgb: np.ndarray, face_size: float | None = None) -> list[Detection]:
        """Faces in an RGB uint8 image, best first.

        ``face_size`` (pixels, e.g. from a tracker) skips the pyramid levels at which a face that big
        spans more than a few P-Net cells: the expensive fine levels, which can only find smaller faces.
        The levels kept are the very ones of a full run (same scales, same resampling), so the tracked
        face's result is the same."""
        image = np.ascontiguousarray(image_rgb[..., :3])
        boxes = self._stage1(image, face_size)
        if len(boxes):
            with torch.no_grad():
                prob, reg = self.rnet(_crops(image, boxes, 24))
            keep = prob.numpy() >= self.thresholds[1]
            boxes = np.concatenate([boxes[keep, :4], prob.numpy()[keep, None], reg.numpy()[keep]], 1)
            boxes = boxes[_nms(boxes, 0.7)]
            boxes = np.fix(_square(_regress(boxes[:, :5], boxes[:, 5:9], plus_one=True)))
        if not len(boxes):
            return []
        with torch.no_grad():
            prob, reg, pts = self.onet(_crops(image, boxes, 48))
        prob, reg, pts = prob.numpy(), reg.numpy(), pts.numpy()
        keep = prob >= self.thresholds[2]
        boxes, reg, pts = boxes[keep], reg[keep], pts[keep]
        boxes[:, 4] = prob[keep]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        xs = w[:, None] * pts[:, 0:5] + boxes[:, 0:1] - 1
        ys = h[:, None] * pts[:, 5:10] + boxes[:, 1:2] - 1
        points = np.stack([xs, ys], -1)
        boxes = _regress(boxes, reg, plus_one=True)
        keep = _nms(boxes, 0.7, "min")
        keep = keep[np.argsort(-boxes[keep, 4])]
        return [
            Detection(box=np.array([b[0] - 1, b[1] - 1, b[2], b[3]]), score=float(b[4]), points=p)
            for b, p in zip(boxes[keep], points[keep], strict=True)
        ]
