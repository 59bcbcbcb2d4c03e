"""The generator is the same function as NVIDIA's EG3D: outputs of the official code on its own pickle."""

from __future__ import annotations

import json

import pytest
import torch

from innout.eg3d import GeneratorConfig, TriPlaneGenerator, load_generator
from innout.eg3d.renderer import planes_to_table, sample_planes, sample_planes_mean

from .conftest import shared_path


@pytest.fixture(scope="module")
def fixture():
    G = load_generator(shared_path("fixtures", "eg3d_tiny", "G_tiny.pkl"), convert=False)
    ref = torch.load(shared_path("fixtures", "eg3d_tiny", "reference.pt"), weights_only=True)
    return G, ref


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float = 0.0) -> None:
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


def test_config_read_from_the_pickle(fixture):
    G, _ = fixture
    assert G.config == GeneratorConfig.tiny()


def test_mapping(fixture):
    G, ref = fixture
    with torch.no_grad():
        assert_close(G.mapping(ref["z"], ref["c"], truncation_psi=1.0), ref["ws_psi1"], atol=1e-5)
        assert_close(
            G.mapping(ref["z"], ref["c"], truncation_psi=0.7, truncation_cutoff=14), ref["ws_psi07"], atol=1e-5
        )
    assert_close(G.backbone.mapping.w_avg, ref["w_avg"], atol=0)


def test_triplanes_features_and_decoder(fixture):
    G, ref = fixture
    with torch.no_grad():
        planes = G.synthesize_planes(ref["ws_psi07"], noise_mode="const")
        assert_close(
            planes.reshape(2, 96, 256, 256)[:, :, ::4, ::4], ref["planes_every4th_pixel"], atol=1e-5, rtol=1e-5
        )
        features = sample_planes(planes, ref["sample_coords"], G.rendering.box_warp)
        assert_close(features, ref["sampled_features"], atol=1e-5, rtol=1e-5)
        fast = sample_planes_mean(planes_to_table(planes), 256, ref["sample_coords"], G.rendering.box_warp)
        assert_close(fast.reshape(2, 500, 32), ref["sampled_features"].mean(1), atol=1e-5, rtol=1e-5)
        decoded = G.decoder(ref["sampled_features"].mean(1).reshape(-1, 32))
    assert_close(decoded.rgb.reshape(2, 500, 32), ref["decoder_rgb"], atol=1e-5, rtol=1e-5)
    assert_close(decoded.sigma.reshape(2, 500, 1), ref["decoder_sigma"], atol=1e-5, rtol=1e-5)
    assert decoded.blend is None


def test_full_synthesis(fixture):
    G, ref = fixture
    with torch.no_grad():
        out = G.synthesis(ref["ws_psi07"], ref["c"], noise_mode="const", deterministic=True)
    assert_close(out["image_raw"], ref["image_raw"], atol=1e-4)
    assert_close(out["image_depth"], ref["image_depth"], atol=1e-4)
    assert_close(out["image"], ref["image"], atol=1e-3)
    assert out["image"].shape == (2, 3, 512, 512)


def test_full_size_state_dict_matches_official_names_and_shapes():
    expected = json.loads(shared_path("fixtures", "eg3d_tiny", "ffhq512-128_state_dict_shapes.json").read_text())
    with torch.device("meta"):
        G = TriPlaneGenerator(GeneratorConfig.ffhq512())
    ours = {k: list(v.shape) for k, v in G.state_dict().items()}
    assert ours == expected
    assert list(ours) == list(expected)  # same order as the official state_dict()
