"""MTCNN's five points (the EG3D crop's landmarks) and how they are tied to the tracked face mesh."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from skimage import data as skdata

from innout.preprocess import align, keypoints, mtcnn
from innout.preprocess.landmarks import FaceMeshTracker

from .conftest import requires

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("facenet_pytorch") is None, reason=f"MTCNN weights not installed: {mtcnn.INSTALL_HINT}"
)


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def detector():
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip(f"MTCNN weights not installed: {mtcnn.INSTALL_HINT}")
    return mtcnn.MTCNN()


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.95], [50, 50, 60, 60, 0.5], [0, 0, 4, 4, 0.99]], float)
    assert sorted(mtcnn._nms(boxes, 0.5).tolist()) == [1, 2, 3]
    # 'min' overlap: the small box inside the big one counts as fully overlapped
    assert sorted(mtcnn._nms(boxes, 0.5, "min").tolist()) == [2, 3]
    assert len(mtcnn._nms(np.zeros((0, 5)), 0.5)) == 0


def test_square_and_regress():
    sq = mtcnn._square(np.array([[10, 20, 30, 60, 1.0]]))
    assert sq[0, :4].tolist() == [0, 20, 40, 60] and sq[0, 4] == 1.0
    reg = mtcnn._regress(np.array([[0, 0, 9, 9, 1.0]]), np.array([[0.1, -0.1, 0.2, 0.0]]), plus_one=True)
    assert np.allclose(reg[0, :4], [1, -1, 11, 9])


def test_networks_have_the_shipped_shapes():
    shapes = {name: tuple(p.shape) for name, p in mtcnn.build_nets()[2].state_dict().items()}
    assert shapes["dense5.weight"] == (256, 1152) and shapes["dense6_3.weight"] == (10, 256)


def test_weights_missing_gives_a_clear_error_and_a_mesh_fallback(monkeypatch):
    monkeypatch.setattr(mtcnn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mtcnn.MTCNNWeightsError, match="facenet-pytorch"):
        mtcnn.weights_dir()
    mtcnn.load_nets.cache_clear()
    try:
        with pytest.warns(UserWarning, match="face-mesh points"):
            assert keypoints.load_detector() is None
    finally:
        mtcnn.load_nets.cache_clear()


@needs_weights
def test_finds_the_face_with_ordered_points(portrait, detector):
    faces = detector.detect(portrait)
    assert len(faces) >= 1 and faces[0].score > 0.99
    p = faces[0].points
    x1, y1, x2, y2 = faces[0].box
    assert (x1 <= p[:, 0]).all() and (p[:, 0] <= x2).all() and (y1 <= p[:, 1]).all() and (p[:, 1] <= y2).all()
    assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0]  # image-left before image-right
    assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])  # eyes, nose, mouth from top to bottom
    # nothing in a flat image
    assert detector.detect(np.full((200, 200, 3), 128, np.uint8)) == []


@needs_weights
@requires("mediapipe")
def test_fast_pyramid_gives_the_same_points(portrait, detector):
    with FaceMeshTracker(video=False) as tracker:
        mesh = tracker(portrait)
    size = float(np.ptp(mesh[:, :2], 0).max())
    full = keypoints.matching_points(detector.detect(portrait), align.five_points(mesh))
    fast = keypoints.matching_points(detector.detect(portrait, face_size=size), align.five_points(mesh))
    assert full is not None and np.allclose(full, fast)


@needs_weights
@requires("mediapipe")
def test_a_wrong_mesh_is_redone_inside_mtcnns_box(portrait, detector):
    with FaceMeshTracker(video=False) as tracker:
        mesh = tracker(portrait)
        wrong = mesh.copy()
        wrong[:, :2] = (mesh[:, :2] - mesh[:, :2].mean(0)) * 0.4 + mesh[:, :2].mean(0) + [60, 30]  # half a face
        fixed, points = keypoints.resolve(tracker, detector, portrait, wrong, fast=True)
    assert points is not None
    assert np.abs(align.five_points(fixed) - align.five_points(mesh)).max() < 15
    assert keypoints.matching_points([detector.detect(portrait)[0]], align.five_points(fixed)) is not None


def test_mesh_points_take_the_clips_mtcnn_offset_where_mtcnn_misses():
    rng = np.random.default_rng(0)
    base = np.array([[-1, 0], [1, 0], [0, 1.2], [-0.8, 2], [0.8, 2]], float)
    offset = np.array([[0.05, -0.1], [-0.05, -0.1], [0, 0.15], [0.02, 0], [-0.02, 0]])  # in eye distances
    mesh, truth = [], []
    for _ in range(12):
        angle, scale, shift = rng.uniform(-0.4, 0.4), rng.uniform(20, 60), rng.uniform(100, 300, 2)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        m = (base * scale) @ rot.T + shift
        mesh.append(m)
        truth.append(m + (offset * 2 * scale) @ rot.T)  # eye distance = 2 * scale
    mesh, truth = np.stack(mesh), np.stack(truth)
    mtcnn5 = truth.copy()
    mtcnn5[[3, 7]] = np.nan  # MTCNN missed these frames
    mesh[5] = np.nan  # no face at all here
    points, count = keypoints.crop_points(mesh, mtcnn5)
    assert count == 9
    assert np.isnan(points[5]).all()
    assert np.allclose(np.delete(points, 5, 0), np.delete(truth, 5, 0), atol=1e-6)


def test_smoothed_offset_keeps_mtcnns_framing_without_its_jitter():
    rng = np.random.default_rng(1)
    t = np.arange(60)
    base = np.array([[-1, 0], [1, 0], [0, 1.2], [-0.8, 2], [0.8, 2]], float) * 40
    mesh = base[None] + np.stack([200 + 2 * np.sin(t / 9), 220 + t * 0.5], -1)[:, None]  # a steady, moving head
    framing = np.array([0.0, -6.0])  # MTCNN frames this face 6 px higher ...
    mtcnn5 = mesh + framing + rng.normal(0, 3, mesh.shape)  # ... with 3 px of noise per frame
    raw, _ = keypoints.crop_points(mesh, mtcnn5, 0.0)
    smooth, count = keypoints.crop_points(mesh, mtcnn5, 10.0)
    assert count == 60 and np.allclose(raw, mtcnn5)

    def jitter(p):
        return np.linalg.norm(np.diff(p, axis=0), axis=-1).mean()

    assert jitter(smooth) < 0.3 * jitter(raw)
    assert np.abs((smooth - mesh).mean((0, 1)) - framing).max() < 0.5
