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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..eg3d.checkpoint import build_generator
from ..eg3d.config import GeneratorConfig
from ..eg3d.generator import TriPlaneGenerator
from ..errors import UserError
from .ood_field import OODField

SCENE_VERSION = "2"
READABLE_VERSIONS = ("1", "2")


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
        ood_meta = {"resolution": scene.ood.resolution, "code_dim": scene.ood.code_dim}
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def _from_version_1(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Version 1 kept the frame map and transforms at the top level, the source as an untyped dict and
    the OOD decoder's layers as ``decoder.0`` / ``decoder.2``. It had no face outlines."""
    tensors["source.frames"] = tensors.pop("frame_indices")
    if "transforms" in tensors:
        tensors["source.transforms"] = tensors.pop("transforms")
    for key in [k for k in tensors if k.startswith("ood.decoder.")]:
        tensors["ood.decoder.net." + key[len("ood.decoder.") :]] = tensors.pop(key)
    old = json.loads(metadata.get("source", "{}"))
    metadata["source"] = json.dumps({k: old.get(k) for k in ("input", "fps", "frame_size")})


def load_scene(path: str | os.PathLike, device: str | torch.device = "cpu") -> SceneData:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SceneFormatError(f"no scene file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise SceneFormatError(f"{path} is not a safetensors scene file ({exc})") from exc
    version = metadata.get("innout_scene_version")
    if version not in READABLE_VERSIONS:
        raise SceneFormatError(f"{path} is not an In-N-Out scene (versions {', '.join(READABLE_VERSIONS)} are read)")
    tensors = load_file(str(path), device=str(device))
    if version == "1":
        _from_version_1(tensors, metadata)
    generator_state = {k[len("generator.") :]: v for k, v in tensors.items() if k.startswith("generator.")}
    G = build_generator(GeneratorConfig.from_dict(json.loads(metadata["generator_config"])), generator_state, device)
    ood = None
    ood_meta = json.loads(metadata["ood"])
    if ood_meta:
        ood_state = {k[len("ood.") :]: v for k, v in tensors.items() if k.startswith("ood.")}
        ood = OODField(len(tensors["ws"]), resolution=ood_meta["resolution"], code_dim=ood_meta["code_dim"])
        ood.load_state_dict(ood_state)
        ood = ood.to(device).requires_grad_(False)
    meta = json.loads(metadata["source"])
    source = SceneSource(
        frames=tensors["source.frames"].tolist(),
        transforms=tensors.get("source.transforms"),
        face_outlines=tensors.get("source.face_outlines"),
        input=meta.get("input"),
        fps=meta.get("fps"),
        frame_size=tuple(meta["frame_size"]) if meta.get("frame_size") else None,
    )
    return SceneData(
        generator=G,
        ws=tensors["ws"],
        cameras=tensors["cameras"],
        ood=ood,
        source=source,
        method=metadata["method"],
        fit_config=json.loads(metadata["fit_config"]),
        history=json.loads(metadata["history"]),
    )
