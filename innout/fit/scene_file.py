"""The scene file: one safetensors file that holds everything rendering needs.

Tensors: ``ws`` [F, 14, 512] (each frame's latents), ``cameras`` [F, 25], ``frame_indices`` [F],
optionally ``transforms`` [F, 2, 3] (crop -> source frame, for paste-back), ``ood.*`` (the OOD field;
absent for the W / W+ / PTI baselines) and ``generator.*`` (the generator, with its fine-tuned or
pivotal-tuned weights). Metadata (JSON strings): the generator and fit configurations, the OOD
field's shape, the source video and the loss history of every stage. No pickle is involved, so a
scene from someone else is as safe to open as an image.
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
from .ood_field import OODField

SCENE_VERSION = "1"


class SceneFormatError(ValueError):
    """The file is not an In-N-Out scene (or is from an incompatible version)."""


@dataclass
class SceneData:
    generator: TriPlaneGenerator
    ws: torch.Tensor
    cameras: torch.Tensor
    ood: OODField | None
    frame_indices: list[int]
    transforms: torch.Tensor | None = None
    method: str = "innout"
    fit_config: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)

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
    tensors = {
        "ws": scene.ws,
        "cameras": scene.cameras,
        "frame_indices": torch.tensor(scene.frame_indices, dtype=torch.int64),
    }
    if scene.transforms is not None:
        tensors["transforms"] = torch.as_tensor(scene.transforms, dtype=torch.float64)
    ood_meta = {}
    if scene.ood is not None:
        tensors.update({f"ood.{k}": v for k, v in scene.ood.state_dict().items()})
        ood_meta = {"resolution": scene.ood.resolution, "code_dim": scene.ood.codes.shape[1]}
    tensors.update({f"generator.{k}": v for k, v in scene.generator.state_dict().items()})
    metadata = {
        "innout_scene_version": SCENE_VERSION,
        "method": scene.method,
        "generator_config": json.dumps(scene.generator.config.to_dict()),
        "ood": json.dumps(ood_meta),
        "fit_config": json.dumps(scene.fit_config),
        "source": json.dumps(scene.source),
        "history": json.dumps({k: _thin(v) for k, v in scene.history.items()}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_scene(path: str | os.PathLike, device: str | torch.device = "cpu") -> SceneData:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no scene file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise SceneFormatError(f"{path} is not a safetensors scene file ({exc})") from exc
    if metadata.get("innout_scene_version") != SCENE_VERSION:
        raise SceneFormatError(f"{path} is not an In-N-Out scene (version {SCENE_VERSION} expected)")
    tensors = load_file(str(path), device=str(device))
    generator_state = {k[len("generator.") :]: v for k, v in tensors.items() if k.startswith("generator.")}
    G = build_generator(GeneratorConfig.from_dict(json.loads(metadata["generator_config"])), generator_state, device)
    ood = None
    ood_meta = json.loads(metadata["ood"])
    if ood_meta:
        ood_state = {k[len("ood.") :]: v for k, v in tensors.items() if k.startswith("ood.")}
        ood = OODField(len(tensors["ws"]), resolution=ood_meta["resolution"], code_dim=ood_meta["code_dim"])
        ood.load_state_dict(ood_state)
        ood = ood.to(device).requires_grad_(False)
    return SceneData(
        generator=G,
        ws=tensors["ws"],
        cameras=tensors["cameras"],
        ood=ood,
        frame_indices=tensors["frame_indices"].tolist(),
        transforms=tensors.get("transforms"),
        method=metadata["method"],
        fit_config=json.loads(metadata["fit_config"]),
        source=json.loads(metadata["source"]),
        history=json.loads(metadata["history"]),
    )
