"""Face landmarks with MediaPipe Face Mesh (models ship inside ``mediapipe==0.10.21``), tracking one face.

Each frame gives up to ``max_faces`` meshes of 468 points as (x, y, z) in pixels (z: depth in x's scale,
larger = farther). The main face is the largest in the first frame where one is found; after that the
face nearest to its last position is kept, so another person entering the frame does not take over.

Face Mesh finds faces with MediaPipe's short-range detector, which misses faces smaller than about a
fifth of the frame (wide shots). When it finds none, the full-range detector looks for faces and the
mesh is run on a square cut around each one.
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 468


class FaceMeshTracker:
    def __init__(self, *, video: bool = True, max_faces: int = 3, min_confidence: float = 0.5) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - the package is a requirement
            raise RuntimeError("face landmarks need mediapipe: pip install mediapipe==0.10.21") from exc
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self.crop_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=min_confidence
        )
        self.detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )
        self.max_faces = max_faces
        self.last_center: np.ndarray | None = None
        self.last_size: float | None = None

    def close(self) -> None:
        self.mesh.close()
        self.crop_mesh.close()
        self.detector.close()

    def __enter__(self) -> FaceMeshTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _points(face, w: int, h: int) -> np.ndarray:
        return np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark[:N_LANDMARKS]], dtype=np.float64)

    def detect_all(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        image_rgb = np.ascontiguousarray(image_rgb)
        h, w = image_rgb.shape[:2]
        result = self.mesh.process(image_rgb)
        faces = [self._points(face, w, h) for face in result.multi_face_landmarks or []]
        return faces or self._detect_small_faces(image_rgb)

    def _detect_small_faces(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        h, w = image_rgb.shape[:2]
        faces = []
        for det in (self.detector.process(image_rgb).detections or [])[: self.max_faces]:
            box = det.location_data.relative_bounding_box
            x0, y0 = box.xmin * w, box.ymin * h
            face = self.mesh_in_box(image_rgb, (x0, y0, x0 + box.width * w, y0 + box.height * h))
            if face is not None:
                faces.append(face)
        return faces

    def mesh_in_box(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """Face mesh [468, 3] of the face in ``box`` (x1, y1, x2, y2 in pixels, from any face detector),
        run on a square cut around it; None if the mesh model finds no face there."""
        import cv2

        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.2 * max(box[2] - box[0], box[3] - box[1])
        scale = 256.0 / side
        to_crop = np.array([[scale, 0, 128 - scale * cx], [0, scale, 128 - scale * cy]])
        crop = cv2.warpAffine(
            np.ascontiguousarray(image_rgb), to_crop, (256, 256), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT
        )
        result = self.crop_mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = self._points(result.multi_face_landmarks[0], 256, 256)
        pts[:, :2] = (pts[:, :2] - to_crop[:, 2]) / scale
        pts[:, 2] /= scale
        return pts

    def __call__(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """Landmarks [468, 3] of the tracked face, or None when it is not found in this frame."""
        faces = self.detect_all(image_rgb)
        if not faces:
            return None
        sizes = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
        if self.last_center is None:
            best = int(np.argmax(sizes))
        else:
            dist = [np.linalg.norm(f[:, :2].mean(0) - self.last_center) for f in faces]
            best = int(np.argmin(dist))
            if dist[best] > 1.5 * self.last_size:  # the tracked face is gone; do not jump to someone else
                return None
        face = faces[best]
        self.last_center = face[:, :2].mean(0)
        self.last_size = float(np.sqrt(sizes[best]))
        return face
