"""Linear edit directions in W / W+ (InterfaceGAN style): the file format and applying them.

A direction is a unit normal n in W (512 numbers) with a ``scale``: w' = w + strength * scale * n on
the ``layers`` it applies to. An *offset* direction is a published W+ edit (e.g. GOAE's ``ws_edit/*.npy``,
shape [1, 14, 512]): its own change per ws, w' = w + strength * offset, exactly.

Learned directions store as scale the spread (standard deviation) of the generator's latents along n,
so a strength is in standard deviations and the recommended range is the same (-3, 3) for every learned
edit. An imported InterfaceGAN ``boundary.npy`` has scale 1 (the official script uses strength 2.2);
imported W+ offsets have the range (-2, 2) around GOAE's strength 1.

File: safetensors with the tensor ``normal`` [512] (and ``offsets`` [num_ws, 512]) and JSON metadata
(``innout_direction`` = format version, name, latent space digest, layers, range, scale, and how it was made).
A direction belongs to a latent space: the digest of the generator's mapping network. Using it with another
generator raises ``DirectionMismatchError`` (its meaning would be lost).

Every field is checked when a direction is made or read (``DirectionError`` naming the file): a name that
can be typed as ``--edit NAME=...``, 512 finite numbers not all zero, layers among EG3D's 14 ws, a finite
positive scale, a finite low-to-high range. A ``.npy`` is memory-mapped and its header checked against the
file before any number is read (a header may claim billions of floats); pickles are never allowed. A bad
file found in a folder is reported and left out; the others stay usable (``scan_directions``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import UserError
from ..safe_pickle import describe

log = logging.getLogger(__name__)

DIRECTION_VERSION = "1"
DIRECTION_SUFFIX = ".safetensors"
W_DIM = 512  # a direction lives in EG3D's W
MAX_WS = 14  # EG3D's ws: a direction's layers are indices below this
MAX_NAME_LENGTH = 100
MAX_METADATA_CHARS = 1 << 20  # a learned direction's info is a few hundred characters
OFFSET_RANGE = (-2.0, 2.0)  # published W+ offsets are made for strength 1 (GOAE's default alpha)
METADATA_KEYS = ("name", "scale", "layers", "range", "latent_space", "info")


class DirectionError(UserError, ValueError):
    """A direction file cannot be read or an edit cannot be applied; the message says why."""


class DirectionMismatchError(DirectionError):
    """The direction was made for another generator's latent space."""


class DirectionNotFoundError(DirectionError, FileNotFoundError):
    """There is no direction (or mapper) file at the path given."""


def latent_space_digest(G: torch.nn.Module) -> str:
    """Digest of what defines W: the mapping network's weights and its running average w_avg. SR
    fine-tuning does not change it, so a fitted scene shares the latent space of its generator."""
    digest = hashlib.sha256()
    for name, tensor in sorted(G.backbone.mapping.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _name_problem(name: object) -> str | None:
    """Why a direction's name is unusable (it is typed as ``--edit NAME=STRENGTH``), or None."""
    if not isinstance(name, str) or not name.strip():
        return "is missing or empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if any(not c.isprintable() or c in "=," for c in name):
        return "holds '=', ',' or control characters"
    return None


def _finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise DirectionError(f"{what} must be a finite number, got {describe(value)}")
    return float(value)


def _checked_layers(layers: object, name: str) -> list[int] | None:
    """None (all ws) or the distinct ws indices, sorted; each below ``MAX_WS``."""
    if layers is None:
        return None
    ok = isinstance(layers, list | tuple) and 0 < len(layers) <= MAX_WS
    if not ok or not all(type(i) is int and 0 <= i < MAX_WS for i in layers) or len(set(layers)) != len(layers):
        raise DirectionError(
            f"direction {name!r}: layers must be null (all) or distinct ws indices 0-{MAX_WS - 1}, "
            f"got {describe(layers)}"
        )
    return sorted(layers)


def _checked_offsets(offsets: object, name: str) -> torch.Tensor:
    """W+ offsets [num_ws, 512] (a leading batch axis of 1 is dropped): finite, not all zero."""
    rows = torch.as_tensor(offsets, dtype=torch.float32)
    if rows.ndim == 3 and rows.shape[0] == 1:
        rows = rows[0]
    if rows.ndim != 2 or rows.shape[1] != W_DIM or not 0 < rows.shape[0] <= MAX_WS:
        raise DirectionError(
            f"direction {name!r}: W+ offsets must have shape [1, num_ws, {W_DIM}] or [num_ws, {W_DIM}] with at most "
            f"{MAX_WS} ws, got {list(rows.shape)}"
        )
    if not bool(torch.isfinite(rows).all()) or not bool(rows.any()):
        raise DirectionError(f"direction {name!r}: the W+ offsets are all zero or not finite")
    return rows.contiguous()


def _checked_range(value_range: object, name: str) -> tuple[float, float]:
    if not isinstance(value_range, list | tuple) or len(value_range) != 2:
        raise DirectionError(f"direction {name!r}: range must be two numbers, got {describe(value_range)}")
    lo, hi = (_finite_number(v, f"direction {name!r}: range") for v in value_range)
    if not lo < hi:
        raise DirectionError(f"direction {name!r}: range must go from low to high, got {lo:g}..{hi:g}")
    return lo, hi


@dataclass
class Direction:
    name: str
    normal: torch.Tensor  # [512], unit norm
    scale: float = 1.0
    layers: list[int] | None = None  # ws indices it moves; None = all
    value_range: tuple[float, float] = (-3.0, 3.0)
    latent_space: str | None = None  # latent_space_digest of its generator; None = unknown (imported)
    info: dict[str, Any] = field(default_factory=dict)  # labeller, samples, accuracy, ...
    offsets: torch.Tensor | None = None  # [num_ws, 512]: a W+ offset direction (w' = w + strength * offsets)

    @classmethod
    def from_offsets(cls, name: str, offsets: torch.Tensor, **fields: Any) -> Direction:
        """A W+ offset direction; its ``normal`` (the direction of the offsets' sum, used only to condition
        other edits on it) is derived from them."""
        rows = _checked_offsets(offsets, name)
        total = rows.sum(0)
        normal = total if float(total.norm()) > 0 else rows[rows.norm(dim=1).argmax()]
        fields.setdefault("value_range", OFFSET_RANGE)
        return cls(name, normal, offsets=rows, **fields)

    @property
    def kind(self) -> str:
        return "normal" if self.offsets is None else "offset"

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem:
            raise DirectionError(f"direction name {describe(self.name)} {problem}")
        normal = torch.as_tensor(self.normal, dtype=torch.float32).reshape(-1)
        if normal.numel() != W_DIM:
            raise DirectionError(f"direction {self.name!r} has {normal.numel()} numbers; a direction in W has {W_DIM}")
        norm = float(normal.norm())
        if not bool(torch.isfinite(normal).all()) or not math.isfinite(norm) or norm == 0:
            raise DirectionError(f"direction {self.name!r} has a zero or non-finite normal")
        self.normal = normal / norm
        self.scale = _finite_number(self.scale, f"direction {self.name!r}: scale")
        if self.scale <= 0:
            raise DirectionError(f"direction {self.name!r}: scale must be positive, got {self.scale}")
        self.layers = _checked_layers(self.layers, self.name)
        self.value_range = _checked_range(self.value_range, self.name)
        if self.latent_space is not None and (not isinstance(self.latent_space, str) or len(self.latent_space) > 64):
            raise DirectionError(f"direction {self.name!r}: latent_space must be a short text or null")
        if not isinstance(self.info, dict):
            raise DirectionError(f"direction {self.name!r}: info must be an object, got {type(self.info).__name__}")
        if self.offsets is not None:
            self.offsets = _checked_offsets(self.offsets, self.name)
            if self.layers is not None or self.scale != 1.0:
                raise DirectionError(f"direction {self.name!r}: an offset direction has its own layers and scale")

    def offset(self, num_ws: int, strength: float, normal: torch.Tensor | None = None) -> torch.Tensor:
        """The change of ws [num_ws, 512] for ``strength`` (optionally along a replaced ``normal``; an offset
        direction ignores it: ``apply_directions`` conditions its rows instead)."""
        if self.offsets is not None:
            if len(self.offsets) != num_ws:
                raise DirectionError(
                    f"direction {self.name!r} holds offsets for {len(self.offsets)} ws, but this generator has {num_ws}"
                )
            return strength * self.offsets
        n = self.normal if normal is None else normal
        if self.layers is not None and max(self.layers) >= num_ws:
            raise DirectionError(f"direction {self.name!r} moves ws {self.layers}, but this generator has {num_ws}")
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
    tensors = {"normal": direction.normal.contiguous()}
    if direction.offsets is not None:
        tensors["offsets"] = direction.offsets.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # atomic: a direction appears whole or not at all
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_boundary(path: Path) -> np.ndarray:
    """An InterfaceGAN ``boundary.npy`` ([1, 512] or [512] floats) or W+ offsets ([1, num_ws, 512] or
    [num_ws, 512]). The header is checked against the file before any data is read (memory-mapped: nothing
    is allocated from the declared shape)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DirectionError(f"{path}: not a plain numpy array file ({str(exc)[:120]})") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        if hasattr(array, "close"):
            array.close()
        raise DirectionError(f"{path}: an archive of several arrays, not one boundary array")
    rows = array.size // W_DIM if array.shape and array.shape[-1] == W_DIM else 0
    plain = array.size == W_DIM and array.ndim <= 2
    offsets = array.ndim in (2, 3) and 1 < rows <= MAX_WS and (array.ndim == 2 or array.shape[0] == 1)
    if array.dtype.kind != "f" or not (plain or offsets):
        raise DirectionError(
            f"{path}: a boundary must have {W_DIM} floating-point numbers ([1, {W_DIM}]) and W+ offsets the shape "
            f"[1, num_ws, {W_DIM}] (num_ws up to {MAX_WS}); this one has shape {array.shape} of {array.dtype}"
        )
    return np.array(array, dtype=np.float32).reshape(-1, W_DIM)


def _read_direction_file(path: Path) -> tuple[dict[str, str], torch.Tensor, torch.Tensor | None]:
    """The metadata, the ``normal`` tensor and the W+ ``offsets`` (offset directions) of a direction file;
    each tensor's size is checked from the header before it is read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            keys = set(f.keys())
            known = meta.get("innout_direction") == DIRECTION_VERSION and "normal" in keys
            if not known or keys - {"normal", "offsets"}:
                raise DirectionError(f"{path}: not an In-N-Out direction file (format {DIRECTION_VERSION})")
            shape = f.get_slice("normal").get_shape()
            if math.prod(shape) != W_DIM:
                raise DirectionError(f"{path}: the normal has shape {shape}; a direction in W has {W_DIM} numbers")
            normal = f.get_tensor("normal")
            if "offsets" in keys:
                shape = f.get_slice("offsets").get_shape()
                if len(shape) != 2 or shape[1] != W_DIM or not 0 < shape[0] <= MAX_WS:
                    raise DirectionError(f"{path}: the offsets have shape {shape}; W+ offsets are [num_ws, {W_DIM}]")
                meta["__offsets__"] = "yes"
                offsets = f.get_tensor("offsets")
    except DirectionError:
        raise
    except Exception as exc:  # safetensors raises its own error types for foreign or damaged files
        raise DirectionError(f"{path}: not a readable direction file ({str(exc)[:160]})") from exc
    if not normal.is_floating_point():
        raise DirectionError(f"{path}: the normal is {normal.dtype}, not floating point")
    if meta.pop("__offsets__", None):
        if not offsets.is_floating_point():
            raise DirectionError(f"{path}: the offsets are {offsets.dtype}, not floating point")
        return meta, normal, offsets
    return meta, normal, None


def _metadata_values(meta: dict[str, str], path: Path) -> dict[str, object]:
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise DirectionError(f"{path}: the direction file lacks {', '.join(missing)} (save it again)")
    values: dict[str, object] = {"name": meta["name"]}
    for key in METADATA_KEYS[1:]:
        if len(meta[key]) > MAX_METADATA_CHARS:
            raise DirectionError(
                f"{path}: the direction's {key} is {len(meta[key])} characters long (at most {MAX_METADATA_CHARS})"
            )
        try:
            values[key] = json.loads(meta[key])
        except (ValueError, RecursionError) as exc:
            raise DirectionError(f"{path}: the direction's {key} is not valid JSON ({str(exc)[:80]})") from exc
    return values


def load_direction(path: str | os.PathLike, name: str | None = None) -> Direction:
    """A direction file (.safetensors), an InterfaceGAN boundary (.npy, [1, 512] or [512]) or published W+
    offsets (.npy, [1, num_ws, 512]); every field is checked (``DirectionError`` naming the file and the
    problem)."""
    path = Path(path)
    if not path.is_file():
        raise DirectionNotFoundError(f"no direction file at {path}")
    try:
        if path.suffix == ".npy":
            rows = torch.from_numpy(_read_boundary(path))
            info = {"imported": path.name}
            if len(rows) == 1:
                return Direction(name or path.stem, rows[0], info=info)
            return Direction.from_offsets(name or path.stem, rows, info=info)
        meta, normal, offsets = _read_direction_file(path)
        v = _metadata_values(meta, path)
        return Direction(
            name=name or v["name"], normal=normal, scale=v["scale"], layers=v["layers"], value_range=v["range"],
            latent_space=v["latent_space"], info=v["info"], offsets=offsets,
        )  # fmt: skip
    except DirectionError as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _direction_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*" + DIRECTION_SUFFIX), *folder.glob("*.npy")])


def scan_directions(paths: list[str | os.PathLike]) -> tuple[dict[str, Direction], list[str]]:
    """Directions from files and folders (every *.safetensors / *.npy inside), by name, and one line per
    file that could not be used (its path and why): one bad file never hides the others."""
    found: dict[str, Direction] = {}
    problems: list[str] = []
    for p in map(Path, paths):
        for f in _direction_files(p) if p.is_dir() else [p]:
            try:
                d = load_direction(f)
            except DirectionError as exc:
                problems.append(str(exc))
                continue
            if d.name in found:
                problems.append(f"{f}: a second direction named {d.name!r}; it replaces the first")
            found[d.name] = d
    return found, problems


def load_directions(paths: list[str | os.PathLike]) -> dict[str, Direction]:
    """Directions from files and folders, by name. A file named in ``paths`` must be valid (else
    ``DirectionError``); a bad file found inside a folder is reported in the log and left out."""
    found: dict[str, Direction] = {}
    for p in map(Path, paths):
        if p.is_dir():
            in_folder, problems = scan_directions([p])
            for problem in problems:
                log.warning("direction left out: %s", problem)
            found.update(in_folder)
        else:
            d = load_direction(p)
            found[d.name] = d
    return found


def without_span(vectors: torch.Tensor, normals: list[torch.Tensor]) -> torch.Tensor:
    """``vectors`` [..., D] with their components in the span of ``normals`` (each [D]) removed, by least
    squares: what conditioning on those directions leaves (normals, W+ offset rows, learned classifiers)."""
    basis = torch.stack(normals, dim=1).to(vectors)  # [D, k]
    flat = vectors.reshape(-1, vectors.shape[-1])
    coeffs = torch.linalg.lstsq(basis, flat.T).solution  # [k, N]
    return (flat - (basis @ coeffs).T).reshape(vectors.shape)


def conditioned_normal(primary: Direction, conditions: list[Direction]) -> torch.Tensor:
    """InterfaceGAN's conditional manipulation: the primary normal with its components along the
    condition normals projected out (so moving along it leaves those attributes' scores unchanged)."""
    if not conditions:
        return primary.normal
    rest = without_span(primary.normal, [c.normal for c in conditions])
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
        if d.offsets is not None:
            rows = d.offset(ws.shape[1], 1.0) if not others else conditioned_rows(d.offsets, others)
            out = out + float(strength) * rows.to(ws)
            continue
        normal = conditioned_normal(d, others)
        out = out + d.offset(ws.shape[1], float(strength), normal).to(ws)
    return out


def conditioned_rows(rows: torch.Tensor, conditions: list[Direction]) -> torch.Tensor:
    """W+ offsets [num_ws, 512] with their components along the condition normals projected out, row by row."""
    return without_span(rows, [c.normal for c in conditions])
