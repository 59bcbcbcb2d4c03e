"""Renderer pieces: the fast sampler equals grid_sample, seeded renders do not depend on chunking,
batches equal single renders, noise and precision modes behave as EG3D's."""

from __future__ import annotations

import pytest
import torch

from innout.eg3d import frontal_label, orbit_label
from innout.eg3d.cameras import camera_rays
from innout.eg3d.renderer import planes_to_table, sample_planes, sample_planes_mean
from innout.render import importance_depths, interval_weights, per_sample_weights, render_rays
from innout.runtime import set_precision


def test_fast_sampler_equals_grid_sample_values_and_gradients():
    planes = torch.randn(2, 3, 8, 16, 16, requires_grad=True)
    coords = torch.rand(2, 300, 3) * 1.4 - 0.7  # includes points outside the [-0.5, 0.5] box
    coords[0, 0] = torch.tensor([0.5, -0.5, 0.49999])  # exactly on the border
    reference = sample_planes(planes, coords, box_warp=1.0).mean(1)
    fast = sample_planes_mean(planes_to_table(planes), 16, coords, box_warp=1.0).reshape(2, 300, 8)
    torch.testing.assert_close(fast, reference, atol=1e-6, rtol=1e-5)
    weights = torch.randn_like(reference)
    (g_ref,) = torch.autograd.grad((reference * weights).sum(), planes)
    (g_fast,) = torch.autograd.grad((fast * weights).sum(), planes)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-6, rtol=1e-5)


def test_plane_axes_quirk():
    # one channel per plane holding the column index: the u coordinate of each plane is x, x, z
    size = 8
    planes = torch.arange(size, dtype=torch.float32).expand(1, 3, 1, size, size).clone()
    point = torch.tensor([[[0.1, 0.2, 0.3]]])
    feats = sample_planes(planes, point, box_warp=1.0)[0, :, 0, 0]
    u = torch.tensor([0.1, 0.1, 0.3]) * 2
    torch.testing.assert_close(feats, ((u + 1) * size - 1) / 2)


def test_per_sample_weights_equal_interval_midpoints():
    colors = torch.randn(5, 7, 4)
    w = torch.rand(5, 6)
    mid = (colors[:, :-1] + colors[:, 1:]) / 2
    expected = (w.unsqueeze(-1) * mid).sum(1)
    got = (per_sample_weights(w).unsqueeze(-1) * colors).sum(1)
    torch.testing.assert_close(got, expected)


def test_marcher_opaque_and_empty():
    depths = torch.linspace(2.25, 3.3, 10).expand(2, 10)
    sigma = torch.stack([torch.full((10,), -50.0), torch.full((10,), 1e4)])
    (w,) = interval_weights([sigma], depths)
    assert w[0].sum() < 1e-6  # empty ray
    assert w[1, 0] == pytest.approx(1.0, abs=1e-5)  # opaque at the first interval


def test_importance_samples_concentrate_on_the_surface():
    depths = torch.linspace(2.25, 3.3, 48).expand(1, 48)
    w = torch.zeros(1, 47)
    w[0, 20] = 1.0
    u = torch.linspace(0, 1, 48).expand(1, 48)
    fine = importance_depths(depths, w, u)
    near = ((fine > depths[0, 19]) & (fine < depths[0, 22])).float().mean()
    assert near > 0.5
    assert torch.all(fine[:, 1:] >= fine[:, :-1])


def test_seeded_render_independent_of_chunking(device_generator, device):
    G = device_generator
    c = orbit_label(1.9, 1.4).to(device)
    with torch.no_grad():
        planes = G.synthesize_planes(G.mapping(torch.randn(1, 512, device=device), frontal_label().to(device)))
        origins, dirs = camera_rays(c, 16)
        torch.manual_seed(7)
        face = [G.face_field(planes)]
        a = render_rays(face, origins, dirs, G.rendering, points_per_chunk=1 << 20)
        torch.manual_seed(7)
        b = render_rays(face, origins, dirs, G.rendering, points_per_chunk=100)
        c_ = render_rays(face, origins, dirs, G.rendering)
    torch.testing.assert_close(a.feature_image, b.feature_image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.depth_image, b.depth_image, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a.feature_image, c_.feature_image)  # stochastic by default


def test_batch_equals_single(device_generator, device):
    G = device_generator
    z = torch.randn(2, 512, device=device)
    c = torch.cat([frontal_label(), orbit_label(2.0, 1.3)]).to(device)
    with torch.no_grad(), set_precision("fp32"):  # the claim is about fp32 maths: no TF32, no fp16 SR on CUDA
        ws = G.mapping(z, c)
        both = G.synthesis(ws, c, deterministic=True, sr_fp16=False)
        one = G.synthesis(ws[1:], c[1:], deterministic=True, sr_fp16=False)
    for key in ("image", "image_raw", "image_depth"):
        torch.testing.assert_close(both[key][1:], one[key], atol=1e-4, rtol=1e-4)


def test_noise_modes(tiny_generator):
    G = tiny_generator
    ws = G.mapping(torch.randn(1, 512), frontal_label())
    with torch.no_grad():
        const = [G.synthesize_planes(ws, "const") for _ in range(2)]
        rand = [G.synthesize_planes(ws, "random") for _ in range(2)]
        none = G.synthesize_planes(ws, "none")
    torch.testing.assert_close(const[0], const[1])
    assert not torch.allclose(rand[0], rand[1])
    assert not torch.allclose(none, const[0])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesize_planes(ws, "loud")


def test_fp16_block_close_to_fp32():
    """The half-precision path (pre-normalisation, fp32 bias/activation, +-256 clamp) on one SR-style block."""
    from innout.eg3d.layers import SynthesisBlock

    block = SynthesisBlock(8, 16, 512, 32, 3, is_last=False, use_fp16=True, conv_clamp=256).eval()
    x, img, ws = torch.randn(1, 8, 16, 16), torch.randn(1, 3, 16, 16), torch.randn(1, 3, 512)
    with torch.no_grad():
        x32, img32 = block(x, img, ws, noise_mode="const", allow_fp16=False)
        x16, img16 = block(x, img, ws, noise_mode="const", allow_fp16=True)
    assert x32.dtype == torch.float32 and x16.dtype == torch.float16 and img16.dtype == torch.float32
    assert (x16.float() - x32).abs().max() < 2e-2 * x32.abs().max()
    assert (img16 - img32).abs().max() < 2e-2 * img32.abs().max()


@pytest.mark.gpu
def test_fp16_superresolution_on_cuda(tiny_generator):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    G = tiny_generator.to("cuda")
    c = frontal_label().cuda()
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, 512, device="cuda"), c)
        render = G.render_planes(G.synthesize_planes(ws), c, deterministic=True)
        full = G.super_resolve(render, ws, fp16=False)
        half = G.super_resolve(render, ws)
    G.to("cpu")
    assert (half - full).abs().max() < 0.05
    assert (half - full).abs().mean() < 5e-3


def test_gradients_reach_latents(tiny_generator):
    G = tiny_generator
    c = frontal_label()
    ws = G.mapping(torch.randn(1, 512), c).detach().requires_grad_(True)
    out = G.synthesis(ws, c, neural_rendering_resolution=16)
    out["image_raw"].square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_differentiated_through_the_styles_equals_the_fused_formula(up):
    """With a gradient to the styles, batch 1 runs the non-fused order (no weight gradient to compute): its
    value and its gradients (activations, styles) are the per-sample-weight formula's."""
    import torch.nn.functional as F

    from innout.eg3d.layers import conv3x3_up2, fir_filter_1331, modulated_conv2d

    torch.manual_seed(0)
    weight = torch.randn(6, 4, 3, 3)
    fir = fir_filter_1331()
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    styles = torch.randn(1, 4, requires_grad=True)
    out = modulated_conv2d(x, weight, styles, demodulate=True, up=up, fir=fir)
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), (x, styles))

    per_sample = weight * styles.reshape(1, -1, 1, 1)
    per_sample = per_sample * (per_sample.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
    ref = conv3x3_up2(x, per_sample, fir, groups=1) if up == 2 else F.conv2d(x, per_sample, padding=1)
    ref_grads = torch.autograd.grad((ref * probe).sum(), (x, styles))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # and the fused order (no gradient) gives the same value
        torch.testing.assert_close(modulated_conv2d(x, weight, styles, demodulate=True, up=up, fir=fir), ref,
                                   atol=1e-5, rtol=1e-5)  # fmt: skip
