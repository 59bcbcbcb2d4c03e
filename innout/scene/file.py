"""The scene file: one safetensors file that holds everything rendering and export need.

Frames are numbered 0..F-1: the fitted frames, in order. ``SceneSource`` maps them to the source video
(``frames[t]`` is fitted frame t's number in the decoded source, 0-based) and holds what paste-back
needs (the crop -> frame transforms and the face outlines), so a scene exports the same whether or not
the preprocessing cache still exists.

Tensors: ``ws`` [F, 14, 512] (each frame's latents), ``cameras`` [F, 25], ``source.frames`` [F],
optionally ``source.transforms`` [F, 2, 3] and ``source.face_outlines`` [F, K, 2], ``ood.*`` (the OOD
field; absent for the W / W+ / PTI baselines) and ``generator.*`` (the generator, with its fine-tuned or
pivotal-tuned weights). Metadata (JSON strings): the generator and fit configurations, the OOD field's
shape, the source's path, frame rate and size, and the loss history of every stage. No pickle is
involved, so a scene from someone else is as safe to open as an image. Version 1 files (before the
source was self-contained) are read and converted on load.

Loading checks everything before building anything: the metadata (required keys, JSON, types, the OOD
field's resolution and code size within ``MAX_OOD_RESOLUTION`` / ``MAX_OOD_CODE_DIM``), then every
tensor's shape from the file's header against what the configuration declares (the generator and the
OOD field are built on the meta device, so a few-KB file cannot ask for gigabytes); only then are the
tensors read, with their content hash checked (scenes written before the hash existed have none) and
NaN/inf refused. Any problem is a ``SceneFormatError`` naming the file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..eg3d.building import CheckpointError, check_state_shapes, config_from_metadata, fill_generator, meta_generator
from ..eg3d.generator import TriPlaneGenerator
from ..errors import UserError
from ..safe_pickle import describe
from .ood_field import OODField

SCENE_VERSION = "2"
READABLE_VERSIONS = ("1", "2")
REQUIRED_METADATA = ("generator_config", "ood", "source", "method")
MAX_FRAMES = 1_000_000  # nine hours at 30 fps
MAX_OOD_RESOLUTION = 1024  # In-N-Out's is 256
MAX_OOD_CODE_DIM = 1024  # In-N-Out's is 32
MAX_OUTLINE_POINTS = 10_000  # a face-mesh outline has 36
CAMERA_SIZE = 25  # 16 extrinsics + 9 intrinsics
MAX_METADATA_CHARS = 16 << 20  # the loss history, the longest entry, is thinned to 1000 records per stage


class SceneFormatError(UserError, ValueError):
    """The file is not an In-N-Out scene (or is from an incompatible version)."""


@dataclass
class SceneSource:
    """Where a scene's frames come from and what pasting them back needs.

    ``frames``: the source frame number of each fitted frame (0-based, in the decoded video);
    ``transforms`` [F, 2, 3]: crop pixel -> source frame pixel; ``face_outlines`` [F, K, 2]: the face-mesh
    outline in crop pixels (the paste-back mask); ``input``: the video, photo or folder fitted; ``fps``
    and ``frame_size`` (width, height) of the source."""

    frames: list[int]
    transforms: torch.Tensor | None = None
    face_outlines: torch.Tensor | None = None
    input: str | None = None
    fps: float | None = None
    frame_size: tuple[int, int] | None = None

    @classmethod
    def synthetic(cls, n_frames: int) -> SceneSource:
        """Frames 0..n-1 of no video (synthetic or generated scenes)."""
        return cls(frames=list(range(n_frames)))

    def subset(self, keep: list[int]) -> SceneSource:
        """The source of the fitted frames ``keep`` (indices into this one's frames)."""

        def pick(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[torch.as_tensor(keep, dtype=torch.long)]

        return SceneSource([self.frames[i] for i in keep], pick(self.transforms), pick(self.face_outlines),
                           self.input, self.fps, self.frame_size)  # fmt: skip


@dataclass
class SceneData:
    generator: TriPlaneGenerator
    ws: torch.Tensor
    cameras: torch.Tensor
    ood: OODField | None
    source: SceneSource
    method: str = "innout"
    fit_config: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.source.frames) != len(self.ws):
            raise ValueError(f"the source maps {len(self.source.frames)} frames, the scene has {len(self.ws)}")

    @property
    def n_frames(self) -> int:
        return len(self.ws)


def _thin(history: list[dict[str, float]], limit: int = 1000) -> list[dict[str, float]]:
    if len(history) <= limit:
        return history
    step = len(history) / limit
    return [history[int(i * step)] for i in range(limit)] + [history[-1]]


def save_scene(scene: SceneData, path: str | os.PathLike) -> Path:
    path = Path(path)
    src = scene.source
    tensors = {
        "ws": scene.ws,
        "cameras": scene.cameras,
        "source.frames": torch.tensor(src.frames, dtype=torch.int64),
    }
    if src.transforms is not None:
        tensors["source.transforms"] = torch.as_tensor(src.transforms, dtype=torch.float64)
    if src.face_outlines is not None:
        tensors["source.face_outlines"] = torch.as_tensor(src.face_outlines, dtype=torch.float32)
    ood_meta = {}
    if scene.ood is not None:
        tensors.update({f"ood.{k}": v for k, v in scene.ood.state_dict().items()})
        ood_meta = {"resolution": scene.ood.resolution, "code_dim": scene.ood.code_dim, "motion": scene.ood.motion}
    tensors.update({f"generator.{k}": v for k, v in scene.generator.state_dict().items()})
    source_meta = {"input": src.input, "fps": src.fps, "frame_size": list(src.frame_size) if src.frame_size else None}
    metadata = {
        "innout_scene_version": SCENE_VERSION,
        "method": scene.method,
        "generator_config": json.dumps(scene.generator.config.to_dict()),
        "ood": json.dumps(ood_meta),
        "fit_config": json.dumps(scene.fit_config),
        "source": json.dumps(source_meta),
        "history": json.dumps({k: _thin(v) for k, v in scene.history.items()}),
    }
    return _write(tensors, path, metadata)


def _write(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    """Atomic, with the tensors' content hash (``innout.storage``); ``StorageError`` naming the path."""
    from safetensors import SafetensorError

    from ..storage import StorageError, save_tensors, writing

    with writing("the scene", path):
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return save_tensors(tensors, path, metadata)
    except SafetensorError as exc:  # safetensors reports its I/O errors (a read-only folder...) as its own type
        raise StorageError(f"could not write the scene at {path}: {exc}") from exc


# -- reading -------------------------------------------------------------------------------------------

_V1_NAMES = {"frame_indices": "source.frames", "transforms": "source.transforms"}


def _current_name(key: str, version: str) -> str:
    """A tensor's name in version 2. Version 1 kept the frame map and transforms at the top level and the
    OOD decoder's layers as ``decoder.0`` / ``decoder.2``; it had no face outlines."""
    if version != "1":
        return key
    if key in _V1_NAMES:
        return _V1_NAMES[key]
    if key.startswith("ood.decoder."):
        return "ood.decoder.net." + key[len("ood.decoder.") :]
    return key


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """The metadata and each tensor's (dtype, shape) from the file's header; no tensor is read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            layout = {}
            for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                piece = f.get_slice(key)
                layout[key] = (piece.get_dtype(), tuple(piece.get_shape()))
    except Exception as exc:  # safetensors raises its own error types for foreign, truncated or garbled files
        raise SceneFormatError(f"{path} is not a readable safetensors scene file ({str(exc)[:160]})") from exc
    return metadata, layout


def _json_object(metadata: dict[str, str], key: str, path: Path, default: Any = None) -> Any:
    if key not in metadata:
        if default is not None:
            return default
        raise SceneFormatError(f"{path}: the scene lacks its '{key}' metadata (not a complete In-N-Out scene)")
    if len(metadata[key]) > MAX_METADATA_CHARS:
        raise SceneFormatError(f"{path}: the scene's '{key}' metadata is {len(metadata[key])} characters long")
    try:
        value = json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:
        raise SceneFormatError(f"{path}: the scene's '{key}' metadata is not valid JSON ({str(exc)[:80]})") from exc
    if not isinstance(value, dict):
        raise SceneFormatError(f"{path}: the scene's '{key}' metadata is not an object")
    return value


def _real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def _checked_ood(ood: dict, path: Path) -> tuple[int, int, bool] | None:
    """(resolution, code size, motion) of the OOD field, or None when the scene has none. Scenes written before
    the OOD field could move say nothing of motion: they have none."""
    if not ood:
        return None
    resolution, code_dim, motion = ood.get("resolution"), ood.get("code_dim"), ood.get("motion", False)
    if not isinstance(motion, bool):
        raise SceneFormatError(f"{path}: the OOD field's motion {describe(motion)} must be true or false")
    if not _whole(resolution, 1, MAX_OOD_RESOLUTION) or not _whole(code_dim, 1, MAX_OOD_CODE_DIM):
        raise SceneFormatError(
            f"{path}: the OOD field's resolution {describe(resolution)} / code size {describe(code_dim)} must be whole "
            f"numbers from 1 to {MAX_OOD_RESOLUTION} / {MAX_OOD_CODE_DIM}"
        )
    return resolution, code_dim, motion


def _checked_source(source: dict, path: Path) -> dict[str, Any]:
    fps, size, where = source.get("fps"), source.get("frame_size"), source.get("input")
    if fps is not None and not (_real(fps) and 0 < fps <= 1000):
        raise SceneFormatError(f"{path}: the source's frame rate {describe(fps)} is not a number in (0, 1000]")
    if size is not None and not (
        isinstance(size, list) and len(size) == 2 and all(_whole(v, 1, 1 << 16) for v in size)
    ):
        raise SceneFormatError(f"{path}: the source's frame size {describe(size)} is not two whole numbers")
    if where is not None and not isinstance(where, str):
        raise SceneFormatError(f"{path}: the source's input is not a path")
    return {"input": where, "fps": fps, "frame_size": tuple(size) if size else None}


def _expect_shape(layout, key: str, shape: tuple[int, ...], path: Path, floating: bool = True) -> None:
    dtype, actual = layout[key]
    if actual != shape:
        raise SceneFormatError(f"{path}: the tensor {key} has shape {list(actual)}, expected {list(shape)}")
    if floating != (dtype.startswith("F") or dtype.startswith("BF")):
        raise SceneFormatError(f"{path}: the tensor {key} is {dtype}, expected {'floats' if floating else 'integers'}")


def _check_layout(layout, G: TriPlaneGenerator, ood: tuple[int, int, bool] | None, path: Path) -> OODField | None:
    """Every tensor's shape against the configuration; returns the OOD field on the meta device."""
    missing = [k for k in ("ws", "cameras", "source.frames") if k not in layout]
    if missing:
        raise SceneFormatError(f"{path}: the scene lacks the tensor(s) {', '.join(missing)}")
    shape = layout["ws"][1]
    n = shape[0] if len(shape) == 3 else 0
    if not 1 <= n <= MAX_FRAMES:
        raise SceneFormatError(f"{path}: the latents ws have shape {list(shape)}; expected [frames, ws, {G.w_dim}]")
    _expect_shape(layout, "ws", (n, G.num_ws, G.w_dim), path)
    _expect_shape(layout, "cameras", (n, CAMERA_SIZE), path)
    _expect_shape(layout, "source.frames", (n,), path, floating=False)
    if "source.transforms" in layout:
        _expect_shape(layout, "source.transforms", (n, 2, 3), path)
    if "source.face_outlines" in layout:
        outline = layout["source.face_outlines"][1]
        points = outline[1] if len(outline) == 3 and 1 <= outline[1] <= MAX_OUTLINE_POINTS else 1
        _expect_shape(layout, "source.face_outlines", (n, points, 2), path)
    known = {"ws", "cameras", "source.frames", "source.transforms", "source.face_outlines"}
    extra = [k for k in layout if k not in known and not k.startswith(("generator.", "ood."))]
    if extra:
        raise SceneFormatError(f"{path}: unexpected tensors {extra[:5]} in the scene")
    try:
        check_state_shapes(G, {k[len("generator.") :]: v[1] for k, v in layout.items() if k.startswith("generator.")})
    except CheckpointError as exc:
        raise SceneFormatError(f"{path}: the scene's generator: {exc}") from None
    stored = {k[len("ood.") :]: v[1] for k, v in layout.items() if k.startswith("ood.")}
    if ood is None:
        if stored:
            raise SceneFormatError(f"{path}: the scene has OOD tensors but no OOD field in its metadata")
        return None
    with torch.device("meta"):
        field_ = OODField(n, resolution=ood[0], code_dim=ood[1], motion=ood[2])
    expected = {k: tuple(v.shape) for k, v in field_.state_dict().items()}
    if stored != expected:
        wrong = sorted(k for k in set(stored) | set(expected) if stored.get(k) != expected.get(k))
        raise SceneFormatError(
            f"{path}: the OOD field's tensors do not match its metadata (resolution {ood[0]}, code size {ood[1]}): "
            f"{', '.join(f'{k} {list(stored.get(k, ()))} vs {list(expected.get(k, ()))}' for k in wrong[:3])}"
        )
    return field_


def _read_tensors(path: Path, device) -> dict[str, torch.Tensor]:
    from ..storage import CorruptEntryError, load_tensors

    try:
        tensors, _ = load_tensors(path, device, require_digest=False)
    except CorruptEntryError as exc:
        raise SceneFormatError(f"{exc}; the scene file is damaged: fit it again or restore a copy") from exc
    return tensors


def load_scene(path: str | os.PathLike, device: str | torch.device = "cpu") -> SceneData:
    path = Path(path)
    if not path.is_file():
        raise SceneFormatError(f"no scene file at {path}")
    metadata, layout = _read_header(path)
    version = metadata.get("innout_scene_version")
    if version not in READABLE_VERSIONS:
        raise SceneFormatError(f"{path} is not an In-N-Out scene (versions {', '.join(READABLE_VERSIONS)} are read)")
    if version == "1" and "frame_indices" not in layout:
        raise SceneFormatError(f"{path}: the version 1 scene lacks its frame_indices tensor")
    layout = {_current_name(k, version): v for k, v in layout.items()}
    for key in REQUIRED_METADATA:
        if key not in metadata:
            raise SceneFormatError(f"{path}: the scene lacks its '{key}' metadata (not a complete In-N-Out scene)")
    method = metadata["method"]
    if not 0 < len(method) <= 100:
        raise SceneFormatError(f"{path}: the scene's method is not a short name")
    source = _json_object(metadata, "source", path)
    source = {k: source.get(k) for k in ("input", "fps", "frame_size")} if version == "1" else source
    source_meta = _checked_source(source, path)
    ood = _checked_ood(_json_object(metadata, "ood", path), path)
    fit_config = _json_object(metadata, "fit_config", path, default={})
    history = _json_object(metadata, "history", path, default={})
    try:
        G = meta_generator(config_from_metadata(metadata["generator_config"], f"{path}"), f"{path}")
    except CheckpointError as exc:
        raise SceneFormatError(f"{exc} (in the scene's generator_config)") from None
    field_ = _check_layout(layout, G, ood, path)

    tensors = {_current_name(k, version): v for k, v in _read_tensors(path, device).items()}
    generator_state = {k[len("generator.") :]: v for k, v in tensors.items() if k.startswith("generator.")}
    try:
        G = fill_generator(G, generator_state, device, f"{path}", finite_checked=True)
    except CheckpointError as exc:
        raise SceneFormatError(str(exc)) from None
    ood_field = None
    if field_ is not None:
        field_.load_state_dict({k[len("ood.") :]: v for k, v in tensors.items() if k.startswith("ood.")}, assign=True)
        ood_field = field_.to(device).requires_grad_(False)
    frames = tensors["source.frames"]
    if bool((frames < 0).any()):
        raise SceneFormatError(f"{path}: the source's frame numbers must not be negative")
    source = SceneSource(
        frames=frames.tolist(),
        transforms=tensors.get("source.transforms"),
        face_outlines=tensors.get("source.face_outlines"),
        **source_meta,
    )
    return SceneData(
        generator=G, ws=tensors["ws"], cameras=tensors["cameras"], ood=ood_field, source=source, method=method,
        fit_config=fit_config, history=history,
    )  # fmt: skip
