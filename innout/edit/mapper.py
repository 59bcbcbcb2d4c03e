"""StyleCLIP latent mappers (levels mapper) for EG3D's 14 ws (docs/method.md, editing).

Three mappers act on the ws groups [0:4] (coarse), [4:8] (medium) and [8:14] (fine). Each is a pixel
norm over the ws of its group (dim 1, not across channels, as in the official code) followed by four
equalised linear layers 512 -> 512 (learning-rate multiplier 0.01) with the fused leaky ReLU
leaky(x + b, 0.2) * sqrt(2). The edit is w' = w + strength * 0.04 * mapper(w).

Reads StyleCLIP training checkpoints (``{"state_dict": ..., "opts": ...}``, keys
``mapper.course_mapping.mapping.1.weight`` ...) with ``torch.load(weights_only=True)``, so no code in
the file runs; a bare state dict or a .safetensors file with the same keys also works. A file larger than
``MAX_MAPPER_FILE_BYTES`` or a zip archive with compressed or oversized records (a size bomb) is refused
before anything is read (``innout.safe_pickle.load_torch_file``); every weight must have its exact shape
and be finite.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..safe_pickle import FileLimitError, load_torch_file
from .directions import DirectionError, DirectionNotFoundError

MAX_MAPPER_FILE_BYTES = 256 << 20  # an official checkpoint is 12.6 MB of weights (plus its options)
DIM = 512
LEVELS = {"coarse": slice(0, 4), "medium": slice(4, 8), "fine": slice(8, 14)}
CHECKPOINT_NAMES = {"coarse": "course_mapping", "medium": "medium_mapping", "fine": "fine_mapping"}
OFFICIAL_STEP = 0.04  # w' = w + 0.04 * mapper(w) in the official inference


class EqualLinearLReLU(nn.Module):
    def __init__(self, dim: int = 512, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim, dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(dim))
        self.lr_mul = lr_mul
        self.scale = lr_mul / math.sqrt(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul
        return F.leaky_relu(y, 0.2) * math.sqrt(2)


class LevelMapper(nn.Module):
    def __init__(self, dim: int = 512, depth: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EqualLinearLReLU(dim) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)  # over the group's ws
        for layer in self.layers:
            x = layer(x)
        return x


class LevelsMapper(nn.Module):
    """mapper(ws [N, 14, 512]) -> deltas [N, 14, 512]; levels left out give zero deltas."""

    def __init__(self, name: str = "mapper", levels: tuple[str, ...] = ("coarse", "medium", "fine")) -> None:
        super().__init__()
        self.name = name
        self.mappers = nn.ModuleDict({level: LevelMapper() for level in LEVELS})
        self.levels = levels

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        deltas = torch.zeros_like(ws)
        for level in self.levels:
            sl = LEVELS[level]
            deltas[:, sl] = self.mappers[level](ws[:, sl])
        return deltas

    def edit(self, ws: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        if strength == 0:
            return ws
        return ws + strength * OFFICIAL_STEP * self(ws)

    def load_official_state(self, state: dict[str, torch.Tensor], what: str = "mapper checkpoint") -> None:
        """Load the official checkpoint's weights; each must be a finite tensor of its exact shape."""
        ours = {}
        for level, official in CHECKPOINT_NAMES.items():
            for i in range(4):
                for p in ("weight", "bias"):
                    key = next(
                        (k for k in (f"mapper.{official}.mapping.{i + 1}.{p}", f"{official}.mapping.{i + 1}.{p}")
                         if k in state),
                        None,
                    )  # fmt: skip
                    if key is None:
                        raise DirectionError(f"{what} lacks {official}.mapping.{i + 1}.{p}")
                    ours[f"mappers.{level}.layers.{i}.{p}"] = _checked_weight(state[key], key, p, what)
        self.load_state_dict(ours)


def _checked_weight(value: object, key: str, kind: str, what: str) -> torch.Tensor:
    shape = (DIM, DIM) if kind == "weight" else (DIM,)
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise DirectionError(f"{what}: {key} is not a floating-point tensor")
    if tuple(value.shape) != shape:
        raise DirectionError(f"{what}: {key} has shape {list(value.shape)}, expected {list(shape)}")
    value = value.float()
    if not bool(torch.isfinite(value).all()):
        raise DirectionError(f"{what}: {key} holds NaN or infinite values")
    return value


def _read_state(path: Path) -> object:
    """The file's contents, read without running code and within ``MAX_MAPPER_FILE_BYTES``."""
    what = f"{path}"
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            size = path.stat().st_size
            if size > MAX_MAPPER_FILE_BYTES:
                raise FileLimitError(f"{what}: {size} bytes is more than a mapper can be ({MAX_MAPPER_FILE_BYTES})")
            return load_file(str(path))
        return load_torch_file(path, what, MAX_MAPPER_FILE_BYTES)
    except FileLimitError as exc:
        raise DirectionError(str(exc)) from None
    except Exception as exc:  # pickle/zip/safetensors errors: the file is not a plain checkpoint
        raise DirectionError(f"{path}: not a readable mapper checkpoint ({str(exc)[:200]})") from exc


def load_mapper(
    path: str | os.PathLike, name: str | None = None, levels: tuple[str, ...] = ("coarse", "medium", "fine")
) -> LevelsMapper:
    """A StyleCLIP levels mapper from a training checkpoint (.pt) or a .safetensors state dict."""
    path = Path(path)
    if not path.is_file():
        raise DirectionNotFoundError(f"no mapper file at {path}")
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise DirectionError(f"unknown mapper levels {sorted(unknown)}; choose from {list(LEVELS)}")
    state = _read_state(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DirectionError(f"{path}: expected a state dict, found {type(state).__name__}")
    mapper = LevelsMapper(name or path.stem, levels)
    mapper.load_official_state(state, str(path))
    return mapper.eval().requires_grad_(False)
