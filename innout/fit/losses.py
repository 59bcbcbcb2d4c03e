"""Loss terms of the inversion and the joint fit (paper section 3; docs/method.md). Images are in [-1, 1]."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F

from ..metrics.perceptual import get_lpips


def l2(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (image - target).square().mean()


def masked_l2(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where ``mask`` [N, 1, H, W] is 1 (zero when the mask is empty,
    where the official code divides by zero; docs/differences.md)."""
    weight = mask.expand_as(image)
    return ((image - target).square() * weight).sum() / weight.sum().clamp_min(1.0)


def over_background(image: torch.Tensor, weight: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """A raw image [N, C, H, W] in [-1, 1] rendered on black, with its opacity ``weight`` [N, 1, H, W], seen over
    ``colour`` [N, C, 1, 1] in [0, 1] instead: what shows through is the background's, not black."""
    return image + 2 * (1 - weight) * colour


def background_colours(n: int, seed: int, step: int, device: torch.device) -> torch.Tensor:
    """``n`` random RGB colours [n, 3, 1, 1] in [0, 1] for step ``step``: drawn from the seed and the step alone, so
    a resumed stage draws the same, from a stream of their own (the step's global generator, seeded from the same
    pair by the loop, draws the render's sample jitter: the colours must not be those numbers)."""
    generator = torch.Generator().manual_seed((seed + 1) * 998_244_353 + step)
    return torch.rand(n, 3, 1, 1, generator=generator).to(device)


def perceptual(image: torch.Tensor, target: torch.Tensor, net: str, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean LPIPS over the batch (the spatial mean of the distance map, as the official code); with ``mask``
    [N, 1, H, W] only the features inside it count."""
    return get_lpips(net, str(image.device))(image, target, mask=mask).mean()


def reconstruction_terms(
    image: torch.Tensor, target: torch.Tensor, cfg, mask: torch.Tensor | None = None
) -> dict[str, tuple[float, torch.Tensor]]:
    """The weighted L2 + LPIPS terms every stage starts from; ``cfg`` has ``lambda_l2``, ``lambda_lpips``
    and ``lpips_net`` (the inversion, joint, PTI and SR configurations all do). With ``mask`` [N, 1, H, W]
    (1 = use the pixel) both terms see only the masked pixels: the paper's masked inversion (eq. 14)."""
    if mask is None:
        return {
            "l2": (cfg.lambda_l2, l2(image, target)),
            "lpips": (cfg.lambda_lpips, perceptual(image, target, cfg.lpips_net)),
        }
    return {
        "l2": (cfg.lambda_l2, masked_l2(image, target, mask)),
        "lpips": (cfg.lambda_lpips, perceptual(image, target, cfg.lpips_net, mask)),
    }


def resize(target: torch.Tensor, resolution: int) -> torch.Tensor:
    """Targets to the rendering resolution: bilinear without anti-aliasing, as the official loader."""
    if target.shape[-1] == resolution:
        return target
    return F.interpolate(target, size=(resolution, resolution), mode="bilinear", align_corners=False)


def resize_mask(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    if mask.shape[-1] == resolution:
        return mask
    return F.interpolate(mask, size=(resolution, resolution), mode="nearest")


def delta_regulariser(ws: torch.Tensor) -> torch.Tensor:
    """L_Delta = sum_{i >= 1} ||w_i - w_0||, mean over frames. All 13 offsets count (the official code
    skips w_13; docs/differences.md)."""
    return (ws[:, 1:] - ws[:, :1]).norm(dim=-1).sum(dim=1).mean()


def w_distance(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """Each frame's ||w_t - w_avg|| [F] (Frobenius over the 14 x 512 codes): what L_w and its allowance measure."""
    return (ws - w_avg).flatten(1).norm(dim=1)


def w_regulariser(ws: torch.Tensor, w_avg: torch.Tensor, allowance: torch.Tensor | None = None) -> torch.Tensor:
    """L_w = ||w_t - w_avg|| (``w_distance``), mean over frames. With ``allowance`` [F] (one free distance per
    frame), only the distance beyond it costs: max(0, ||w_t - w_avg|| - allowance_t)."""
    distance = w_distance(ws, w_avg)
    if allowance is not None:
        distance = (distance - allowance).clamp(min=0)
    return distance.mean()


def blend_entropy(blend: torch.Tensor, skew: float = 2.0) -> torch.Tensor:
    """Mean binary entropy of b ** skew over all samples: pushes every b to 0 or 1. The skew makes a
    b around 0.5 cheaper to push down than up, so the face stays the default explanation."""
    # the official clamp to 1 - 1e-19 rounds to 1 in float32 (log 0 = -inf, then nan where sigmoid saturates)
    upper = 1 - torch.finfo(blend.dtype).eps
    p = blend.pow(skew).clamp(1e-19, upper)
    return -(p * torch.log(p) + (1 - p) * torch.log1p(-p)).mean()


def blend_area(blend: torch.Tensor, coarse: int, allowance: torch.Tensor | None = None) -> torch.Tensor:
    """The official area term: for the coarse samples and for the fine ones apart, the mean over rays of the
    squared largest b along the ray; the two averaged. Keeps the OOD object small. ``blend`` [N, M, S] holds
    the ``coarse`` coarse samples first (``Render.blend``). ``allowance`` [N] (beyond the paper): per image, the
    share of rays the object may cover for free; only the excess is penalised, then averaged over images."""
    parts = [blend[..., :coarse], blend[..., coarse:]]
    per_image = [p.amax(dim=-1).square().mean(dim=-1) for p in parts if p.shape[-1] > 0]
    area = sum(per_image) / len(per_image)
    if allowance is not None:
        area = (area - allowance.to(area)).clamp_min(0)
    return area.mean()


def blend_sparsity(blend: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """The official sparsity term: the mean b over every sample of the rays a mask marks in-distribution
    (``outside`` [N, M], 1 = face). The paper writes a sum over samples; the official code, the mean."""
    per_ray = blend.mean(dim=-1)
    return (per_ray * outside).sum() / outside.sum().clamp_min(1.0)


def largest_blend_cross_entropy(blend: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each ray's largest b (``blend`` [N, M, S]) against a mask [N, 1, H, W] with H W = M
    (1 = object), the mean over rays: pulls b up to 1 somewhere along the masked rays and down everywhere on the
    others (beyond the paper: the guides of the joint stage, docs/method.md)."""
    largest = blend.amax(dim=-1).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(largest, mask.flatten(1).to(largest.dtype))


def backward_weighted(
    terms: dict[str, tuple[float, torch.Tensor]],
    limited: tuple[Collection[str], Sequence[torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Back-propagate sum(weight * term) over ``{name: (weight, term)}`` (zero weights left out) and return
    the total and every term as floats, for the loss history. ``limited`` = (names, tensors): the gradient of
    those terms reaches only those tensors (added to their ``.grad``), not every parameter they depend on."""
    weighted = {name: weight * value for name, (weight, value) in terms.items() if weight}
    loss = sum(weighted.values())
    if limited is None:
        loss.backward()
    else:
        _backward_limited(weighted, *limited)
    return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, (_, v) in terms.items()}}


def _backward_limited(
    weighted: dict[str, torch.Tensor], names: Collection[str], reached: Sequence[torch.Tensor]
) -> None:
    """The named weighted terms' gradient into ``reached`` only (taken first, keeping the graph), then every other
    term's into everything."""
    kept = sum(value for name, value in weighted.items() if name in names)
    grads = ()
    if isinstance(kept, torch.Tensor) and kept.requires_grad:
        grads = torch.autograd.grad(kept, list(reached), retain_graph=True, allow_unused=True)
    free = sum(value for name, value in weighted.items() if name not in names)
    if isinstance(free, torch.Tensor) and free.requires_grad:
        free.backward()
    for tensor, grad in zip(reached, grads, strict=False):
        if grad is not None:
            tensor.grad = grad if tensor.grad is None else tensor.grad + grad
