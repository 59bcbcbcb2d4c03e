"""``python -m innout.bench generator --official PATH``: the plumbing that times the user's own clone of the
official EG3D code beside ours. The "official" tree here is a small stand-in written by the test (its call
surface only, nothing of the official code), so the test needs no clone and runs in seconds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from innout.bench import generator
from innout.eg3d import GeneratorConfig

FAKE_TRIPLANE = '''
"""Stand-in for the official training/triplane.py: the call surface the benchmark uses, tiny and fast."""
import json
import os

import torch

import dnnlib  # noqa: F401 - imported as the official module does
import torch_utils  # noqa: F401


def _log(entry):
    with open(os.environ["FAKE_EG3D_LOG"], "a") as f:
        f.write(json.dumps(entry) + "\\n")


class _Backbone(torch.nn.Module):
    def __init__(self, w_dim):
        super().__init__()
        self.fc = torch.nn.Linear(w_dim, 96)

    def synthesis(self, ws, update_emas=False, noise_mode="random", force_fp32=False):
        return self.fc(ws.mean(1))[:, :, None, None].expand(-1, -1, 8, 8).contiguous()


class _RaySampler(torch.nn.Module):
    def forward(self, cam2world_matrix, intrinsics, resolution):
        n, m = cam2world_matrix.shape[0], resolution * resolution
        origins = cam2world_matrix[:, :3, 3].unsqueeze(1).expand(n, m, 3)
        return origins, torch.nn.functional.normalize(-origins, dim=2)


class _Renderer(torch.nn.Module):
    def forward(self, planes, decoder, ray_origins, ray_directions, rendering_options):
        assert planes.ndim == 5 and planes.shape[1:3] == (3, 32), planes.shape
        assert rendering_options["depth_resolution"] > 0
        n, m, _ = ray_origins.shape
        features = decoder(planes.mean((1, 3, 4)))[:, None, :].expand(n, m, 32)
        return features, ray_origins[..., :1], ray_origins[..., :1]


class _SuperResolution(torch.nn.Module):
    def __init__(self, img_resolution):
        super().__init__()
        self.img_resolution = img_resolution

    def forward(self, rgb, x, ws, noise_mode="random", force_fp32=False):
        assert x.shape[1] == 32 and rgb.shape[1] == 3
        return torch.nn.functional.interpolate(rgb, size=(self.img_resolution, self.img_resolution))


class TriPlaneGenerator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, sr_num_fp16_res=0,
                 mapping_kwargs={}, rendering_kwargs={}, sr_kwargs={}, **synthesis_kwargs):
        super().__init__()
        _log({"init": dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                           img_channels=img_channels, sr_num_fp16_res=sr_num_fp16_res,
                           mapping_kwargs=mapping_kwargs, rendering_kwargs=rendering_kwargs,
                           sr_kwargs=sr_kwargs, **synthesis_kwargs)})
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.embed = torch.nn.Linear(z_dim + c_dim, w_dim)
        self.backbone = _Backbone(w_dim)
        self.ray_sampler = _RaySampler()
        self.renderer = _Renderer()
        self.decoder = torch.nn.Linear(32, 32)
        self.superresolution = _SuperResolution(img_resolution)
        self.neural_rendering_resolution = 64
        self.rendering_kwargs = rendering_kwargs

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return self.embed(torch.cat([z, c], 1)).unsqueeze(1).repeat(1, 14, 1)

    def synthesis(self, ws, c, neural_rendering_resolution=None, update_emas=False, **synthesis_kwargs):
        res = self.neural_rendering_resolution
        _log({"synthesis_resolution": res, "synthesis_kwargs": synthesis_kwargs})
        cam2world, intrinsics = c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3)
        origins, directions = self.ray_sampler(cam2world, intrinsics, res)
        planes = self.backbone.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
        planes = planes.view(len(planes), 3, 32, planes.shape[-2], planes.shape[-1])
        features, _, _ = self.renderer(planes, self.decoder, origins, directions, self.rendering_kwargs)
        image = features.permute(0, 2, 1).reshape(len(planes), 32, res, res)
        kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "noise_mode"}
        sr = self.superresolution(image[:, :3], image, ws, noise_mode="none", **kwargs)
        return {"image": sr, "image_raw": image[:, :3]}
'''


def fake_official_clone(root: Path, *, with_dnnlib: bool = True, with_triplane: bool = True) -> Path:
    """A clone-shaped tree: root/eg3d/{training/triplane.py, dnnlib/, torch_utils/}."""
    package = root / "eg3d"
    for name in ["training", "torch_utils"] + (["dnnlib"] if with_dnnlib else []):
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text("")
    if with_triplane:
        (package / "training" / "triplane.py").write_text(textwrap.dedent(FAKE_TRIPLANE))
    return root


def test_official_kwargs_are_eg3d_ffhq512_128():
    config = GeneratorConfig.ffhq512()
    assert config.neural_rendering_resolution == 128  # what the official generator's resolution is set to
    assert generator.official_init_kwargs(config) == {
        "z_dim": 512,
        "c_dim": 25,
        "w_dim": 512,
        "img_resolution": 512,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "channel_base": 32768,
        "channel_max": 512,
        "fused_modconv_default": "inference_only",
        "num_fp16_res": 0,
        "conv_clamp": None,
        "sr_num_fp16_res": 4,
        "sr_kwargs": {"channel_base": 32768, "channel_max": 512, "fused_modconv_default": "inference_only"},
        "rendering_kwargs": {
            "image_resolution": 512,
            "disparity_space_sampling": False,
            "clamp_mode": "softplus",
            "superresolution_module": "training.superresolution.SuperresolutionHybrid8XDC",
            "c_gen_conditioning_zero": False,
            "gpc_reg_prob": 0.5,
            "c_scale": 1.0,
            "superresolution_noise_mode": "none",
            "density_reg": 0.25,
            "density_reg_p_dist": 0.004,
            "reg_type": "l1",
            "decoder_lr_mul": 1.0,
            "sr_antialias": True,
            "depth_resolution": 48,
            "depth_resolution_importance": 48,
            "ray_start": 2.25,
            "ray_end": 3.3,
            "box_warp": 1,
            "avg_camera_radius": 2.7,
            "avg_camera_pivot": [0, 0, 0.2],
        },
    }


def test_official_frame_is_timed_beside_ours(tmp_path, monkeypatch, capsys):
    clone = fake_official_clone(tmp_path / "eg3d-clone")
    log = tmp_path / "fake.log"
    monkeypatch.setenv("FAKE_EG3D_LOG", str(log))
    argv = ["frame", "--repeats", "1", "--device", "cpu", "--arch", "tiny", "--official", str(clone)]
    assert generator.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("generator/frame: median=") and "arch=tiny" in lines[0]
    assert lines[1].startswith("generator/official/frame: median=") and "peak_rss=" in lines[1]
    assert f"code={(clone / 'eg3d').resolve()}" in lines[1] and "neural_rendering_resolution=32" in lines[1]
    assert lines[2].startswith("generator/frame: ours/official=") and "x (medians" in lines[2]

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    inits = [e["init"] for e in entries if "init" in e]
    assert inits and all(i == generator.official_init_kwargs(GeneratorConfig.tiny()) for i in inits)
    synths = [e for e in entries if "synthesis_resolution" in e]
    assert len(synths) == 2  # warm-up + 1 repeat, at the architecture's resolution (set, not the fresh 64)
    assert all(e["synthesis_resolution"] == 32 for e in synths)
    assert all(e["synthesis_kwargs"] == {"noise_mode": "const", "force_fp32": True} for e in synths)


def test_official_path_errors_are_clear(tmp_path, capsys):
    def error_of(path: Path) -> str:
        assert generator.main(["frame", "--device", "cpu", "--official", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "Traceback" not in captured.err
        return captured.err

    err = error_of(tmp_path / "nowhere")
    assert err.startswith("error: --official") and "no such folder" in err

    err = error_of(fake_official_clone(tmp_path / "no-triplane", with_triplane=False))
    assert "training/triplane.py" in err and "github.com/NVlabs/eg3d" in err

    err = error_of(fake_official_clone(tmp_path / "no-dnnlib", with_dnnlib=False))
    assert "module 'dnnlib' is missing" in err
