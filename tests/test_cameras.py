"""Camera helpers reproduce EG3D's conventions (facts D, C12)."""

from __future__ import annotations

import math

import pytest
import torch

from innout.eg3d import cameras


def test_focal_constants():
    assert cameras.FFHQ_FOCAL == pytest.approx(2985.29 / 700, abs=1e-4)
    assert cameras.fov_to_focal(18.837) == pytest.approx(4.26339, abs=1e-5)
    assert cameras.fov_to_focal(18) == pytest.approx(4.46517, abs=1e-5)
    assert cameras.INO_FOCAL == pytest.approx(cameras.fov_to_focal(18), abs=1e-4)


def test_frontal_cam2world():
    c2w = cameras.orbit_cam2world(math.pi / 2, math.pi / 2)[0]
    expected = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])
    torch.testing.assert_close(c2w, expected, atol=1e-6, rtol=0)


def test_lookat_example_position():
    c2w = cameras.orbit_cam2world(math.pi / 2 + 0.4, math.pi / 2 - 0.2)[0]
    torch.testing.assert_close(c2w[:3, 3], torch.tensor([1.04, 0.34, 2.47]), atol=6e-3, rtol=0)
    forward = c2w[:3, 2]
    to_pivot = torch.tensor(cameras.CAMERA_PIVOT) - c2w[:3, 3]
    torch.testing.assert_close(forward, to_pivot / to_pivot.norm(), atol=1e-6, rtol=0)
    assert torch.linalg.det(c2w[:3, :3]) == pytest.approx(1.0, abs=1e-5)


def test_label_layout_and_rays():
    c = cameras.frontal_label()
    assert c.shape == (1, 25)
    torch.testing.assert_close(c[0, 16:], cameras.intrinsics().reshape(9))
    origins, dirs = cameras.camera_rays(c, 128)
    assert origins.shape == dirs.shape == (1, 128 * 128, 3)
    torch.testing.assert_close(dirs[0, 0], torch.tensor([-0.115, 0.115, -0.987]), atol=1e-3, rtol=0)
    # row-major: the second ray is one pixel to the right (camera +x = world +x for the frontal camera)
    assert dirs[0, 1, 0] > dirs[0, 0, 0] and dirs[0, 1, 1] == pytest.approx(dirs[0, 0, 1].item(), abs=1e-4)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(1, 128 * 128))


def test_projecting_points_along_each_ray_lands_on_that_rays_pixel_centre():
    """``project_points`` inverts ``camera_rays`` for any depth, also for a camera with skew and a shifted centre."""
    yawed = cameras.orbit_label(torch.tensor([1.2, 1.9]), torch.tensor([1.5, 1.7]))
    yawed[1, 16 + 1] = 0.3  # skew
    yawed[1, 16 + 2] = 0.45  # principal point
    res = 6
    origins, dirs = cameras.camera_rays(yawed, res)
    depths = torch.linspace(2.0, 3.3, res * res).reshape(1, -1, 1)
    got = cameras.project_points(yawed, origins + depths * dirs)
    centres = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    want = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1).expand(2, -1, -1)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


def test_split_label_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, 25\]"):
        cameras.split_label(torch.zeros(2, 16))
