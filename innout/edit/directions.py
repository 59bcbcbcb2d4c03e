"""Linear edit directions in W / W+ (InterfaceGAN style): the file format and applying them.

A direction is a unit normal n in W (512 numbers) with a ``scale``: w' = w + strength * scale * n on
the ``layers`` it applies to. Learned directions store as scale the spread (standard deviation) of the
generator's latents along n, so a strength is in standard deviations and the recommended range is the
same (-3, 3) for every learned edit. An imported InterfaceGAN ``boundary.npy`` has scale 1 (the
official script uses strength 2.2).

File: safetensors with the tensor ``normal`` [512] and JSON metadata (``innout_direction`` = format
version, name, latent space digest, layers, range, scale, and how it was made). A direction belongs to
a latent space: the digest of the generator's mapping network. Using it with another generator raises
``DirectionMismatchError`` (its meaning would be lost).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import UserError

DIRECTION_VERSION = "1"
DIRECTION_SUFFIX = ".safetensors"


class DirectionError(UserError, ValueError):
    """A direction file cannot be read or an edit cannot be applied; the message says why."""


class DirectionMismatchError(DirectionError):
    """The direction was made for another generator's latent space."""


def default_directions_dir() -> Path:
    """Where ``python -m innout directions learn`` saves and the CLI and app look: pretrained/directions."""
    from ..weights import pretrained_dir

    return pretrained_dir() / "directions"


def latent_space_digest(G: torch.nn.Module) -> str:
    """Digest of what defines W: the mapping network's weights and its running average w_avg. SR
    fine-tuning does not change it, so a fitted scene shares the latent space of its generator."""
    digest = hashlib.sha256()
    for name, tensor in sorted(G.backbone.mapping.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Direction:
    name: str
    normal: torch.Tensor  # [512], unit norm
    scale: float = 1.0
    layers: list[int] | None = None  # ws indices it moves; None = all
    value_range: tuple[float, float] = (-3.0, 3.0)
    latent_space: str | None = None  # latent_space_digest of its generator; None = unknown (imported)
    info: dict[str, Any] = field(default_factory=dict)  # labeller, samples, accuracy, ...

    def __post_init__(self) -> None:
        normal = torch.as_tensor(self.normal, dtype=torch.float32).reshape(-1)
        norm = float(normal.norm())
        if not np.isfinite(norm) or norm == 0:
            raise DirectionError(f"direction {self.name!r} has a zero or non-finite normal")
        self.normal = normal / norm

    def offset(self, num_ws: int, strength: float, normal: torch.Tensor | None = None) -> torch.Tensor:
        """The change of ws [num_ws, 512] for ``strength`` (optionally along a replaced ``normal``)."""
        n = self.normal if normal is None else normal
        mask = torch.zeros(num_ws, 1)
        mask[self.layers if self.layers is not None else slice(None)] = 1.0
        return mask * (strength * self.scale) * n

    def check_space(self, digest: str) -> None:
        if self.latent_space is not None and self.latent_space != digest:
            raise DirectionMismatchError(
                f"direction {self.name!r} was learned for another generator (latent space {self.latent_space}, "
                f"this one is {digest}); learn it again for this generator"
            )


def save_direction(direction: Direction, path: str | os.PathLike) -> Path:
    path = Path(path)
    metadata = {
        "innout_direction": DIRECTION_VERSION,
        "name": direction.name,
        "scale": json.dumps(direction.scale),
        "layers": json.dumps(direction.layers),
        "range": json.dumps(list(direction.value_range)),
        "latent_space": json.dumps(direction.latent_space),
        "info": json.dumps(direction.info),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"normal": direction.normal.contiguous()}, str(path), metadata=metadata)
    return path


def load_direction(path: str | os.PathLike, name: str | None = None) -> Direction:
    """A direction file (.safetensors) or an InterfaceGAN boundary (.npy, [1, 512] or [512])."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no direction file at {path}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DirectionError(f"{path}: not a plain numpy array ({exc})") from exc
        if array.size != 512:
            raise DirectionError(f"{path}: a boundary must have 512 numbers, this one has shape {array.shape}")
        return Direction(name or path.stem, torch.from_numpy(array.astype(np.float32)), info={"imported": str(path)})
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            normal = f.get_tensor("normal") if "normal" in set(f.keys()) else None
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise DirectionError(f"{path}: not a direction file ({exc})") from exc
    if meta.get("innout_direction") != DIRECTION_VERSION or normal is None:
        raise DirectionError(f"{path}: not an In-N-Out direction file (format {DIRECTION_VERSION})")
    return Direction(
        name=name or meta["name"],
        normal=normal,
        scale=float(json.loads(meta["scale"])),
        layers=json.loads(meta["layers"]),
        value_range=tuple(json.loads(meta["range"])),
        latent_space=json.loads(meta["latent_space"]),
        info=json.loads(meta["info"]),
    )


def load_directions(paths: list[str | os.PathLike]) -> dict[str, Direction]:
    """Directions from files and folders (every *.safetensors / *.npy inside), by name."""
    found: dict[str, Direction] = {}
    for p in map(Path, paths):
        files = sorted([*p.glob("*" + DIRECTION_SUFFIX), *p.glob("*.npy")]) if p.is_dir() else [p]
        for f in files:
            d = load_direction(f)
            found[d.name] = d
    return found


def conditioned_normal(primary: Direction, conditions: list[Direction]) -> torch.Tensor:
    """InterfaceGAN's conditional manipulation: the primary normal with its components along the
    condition normals projected out (so moving along it leaves those attributes' scores unchanged)."""
    if not conditions:
        return primary.normal
    basis = torch.stack([c.normal for c in conditions], dim=1)  # [512, k]
    coeffs = torch.linalg.lstsq(basis, primary.normal[:, None]).solution
    rest = primary.normal - (basis @ coeffs)[:, 0]
    if float(rest.norm()) < 1e-6:
        raise DirectionError(f"direction {primary.name!r} lies in the span of the conditions; nothing is left")
    return rest / rest.norm()


def apply_directions(
    ws: torch.Tensor,
    edits: dict[str, float],
    directions: dict[str, Direction],
    *,
    conditional: list[str] | None = None,
) -> torch.Tensor:
    """ws [N, num_ws, 512] moved by every edit {name: strength}. With ``conditional`` names, each edited
    direction has those directions (other than itself) projected out first."""
    out = ws.clone()
    for name, strength in edits.items():
        if name not in directions:
            raise DirectionError(f"no direction named {name!r} (known: {', '.join(sorted(directions)) or 'none'})")
        if strength == 0:
            continue
        d = directions[name]
        others = [directions[c] for c in conditional or [] if c != name]
        missing = [c for c in conditional or [] if c not in directions]
        if missing:
            raise DirectionError(f"conditional direction(s) not loaded: {', '.join(missing)}")
        normal = conditioned_normal(d, others)
        out = out + d.offset(ws.shape[1], float(strength), normal).to(ws)
    return out
