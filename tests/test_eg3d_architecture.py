"""Architecture facts that hold without any fixture (facts B2/B3)."""

from __future__ import annotations

import pytest
import torch

from innout.eg3d import GeneratorConfig, TriPlaneGenerator


def full_size() -> TriPlaneGenerator:
    with torch.device("meta"):
        return TriPlaneGenerator(GeneratorConfig.ffhq512())


def test_full_size_counts():
    G = full_size()
    sd = G.state_dict()
    assert len(sd) == 176
    params = sum(p.numel() for p in G.parameters())
    buffers = sum(b.numel() for b in G.buffers())
    assert (params, buffers) == (30_662_136, 831_024)
    assert G.num_ws == 14


def test_backbone_channels_and_ws_layout():
    G = full_size()
    synthesis = G.backbone.synthesis
    channels = {b.resolution: b.out_channels for b in synthesis.blocks()}
    assert channels == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
    assert all(b.torgb.weight.shape[0] == 96 for b in synthesis.blocks())
    assert not any(b.use_fp16 for b in synthesis.blocks())
    assert G.superresolution.block0.use_fp16 and G.superresolution.block0.conv1.conv_clamp == 256
    assert G.decoder.net[2].weight.shape == (33, 64)


def test_mapping_lr_multipliers():
    G = full_size()
    m = G.backbone.mapping
    assert m.embed.weight_gain == 1 / 25**0.5
    assert m.fc0.weight_gain == 0.01 / 1024**0.5 and m.fc0.activation == "lrelu"
    assert m.fc1.in_features == 512


@pytest.mark.parametrize("name", ["ffhq512", "tiny"])
def test_official_rendering_kwargs_read_back_as_the_same_configuration(name):
    from innout.eg3d.config import RenderingConfig

    config = getattr(GeneratorConfig, name)()
    kwargs = config.official_rendering_kwargs()
    assert RenderingConfig.from_official(kwargs) == config.rendering
    assert kwargs["superresolution_module"] == f"training.superresolution.{config.superresolution_module}"
    assert "white_back" not in kwargs and "density_noise" not in kwargs  # EG3D's FFHQ settings have neither
