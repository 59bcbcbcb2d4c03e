"""What a fit is fitted to: target frames, their cameras, optional OOD masks, and a content key."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .losses import resize, resize_mask


@dataclass(eq=False)
class FitData:
    """``targets`` [F, 3, H, W], float in [-1, 1] or uint8 (real 512 crops stay uint8 in memory);
    ``cameras`` [F, 25];
    ``ood_masks`` [F, 1, H, W] with 1 on the OOD object (semi-supervised fits) or None;
    ``key`` identifies the content for the stage caches. Frames are the fitted frames 0..F-1 (the scene's
    numbering; ``innout.scene.SceneSource`` maps them to the source video)."""

    targets: torch.Tensor
    cameras: torch.Tensor
    key: str
    ood_masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.targets.ndim != 4 or self.targets.shape[1] != 3:
            raise ValueError(f"targets must be [F, 3, H, W], got {tuple(self.targets.shape)}")
        if self.cameras.shape != (len(self.targets), 25):
            raise ValueError(f"cameras must be [{len(self.targets)}, 25], got {tuple(self.cameras.shape)}")
        if self.ood_masks is not None and self.ood_masks.shape[0] != len(self.targets):
            raise ValueError("one OOD mask per frame is needed")

    def __len__(self) -> int:
        return len(self.targets)

    def to(self, device: str | torch.device) -> FitData:
        masks = None if self.ood_masks is None else self.ood_masks.to(device)
        return dataclasses.replace(
            self, targets=self.targets.to(device), cameras=self.cameras.to(device), ood_masks=masks
        )

    def target(self, frames: torch.Tensor, resolution: int) -> torch.Tensor:
        """Targets of ``frames`` at ``resolution``, float in [-1, 1]."""
        if resolution == self.targets.shape[-1]:
            return _to_float(self.targets[frames])
        return self._resized(resolution)[frames]

    def content_key(self) -> str:
        """``key`` plus a digest of the OOD masks when there are any: the stage caches' key of this data (the
        same frames with and without masks, or with other masks, are different fits)."""
        if self.ood_masks is None:
            return self.key
        masks = (self.ood_masks > 0.5).to(torch.uint8).cpu().contiguous().numpy()
        return self.key + "-mask" + hashlib.sha256(masks.tobytes()).hexdigest()[:12]

    def mask(self, frames: torch.Tensor, resolution: int) -> torch.Tensor | None:
        if self.ood_masks is None:
            return None
        return resize_mask(self.ood_masks[frames], resolution)

    @lru_cache(maxsize=4)  # noqa: B019 - one FitData lives for one fit
    def _resized(self, resolution: int) -> torch.Tensor:
        return torch.cat([resize(_to_float(chunk), resolution) for chunk in self.targets.split(16)])

    @classmethod
    def from_arrays(
        cls,
        crops: np.ndarray,
        cameras: np.ndarray,
        *,
        key: str | None = None,
        ood_masks: np.ndarray | None = None,
    ) -> FitData:
        """From uint8 crops [F, H, W, 3], cameras [F, 25] and optional masks [F, H, W] (nonzero = OOD).
        ``key``: a content key the caller already has (e.g. the preprocessing cache entry and the frames
        kept); by default a digest of the crops and cameras."""
        targets = torch.from_numpy(np.stack([np.asarray(c) for c in crops])).permute(0, 3, 1, 2).contiguous()
        masks = None
        if ood_masks is not None:
            masks = torch.from_numpy((np.asarray(ood_masks) > 0).astype(np.float32)).unsqueeze(1)
        if key is None:
            digest = hashlib.sha256()
            for crop in crops:
                digest.update(np.ascontiguousarray(crop).tobytes())
            digest.update(np.ascontiguousarray(cameras, dtype=np.float32).tobytes())
            key = digest.hexdigest()[:20]
        return cls(targets=targets, cameras=torch.as_tensor(np.asarray(cameras), dtype=torch.float32), key=key,
                   ood_masks=masks)  # fmt: skip


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x


def evenly_spaced(count: int, max_frames: int | None) -> list[int]:
    """Indices of at most ``max_frames`` evenly spaced frames of ``count`` (all when None)."""
    if max_frames is None or max_frames >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(1, max_frames - 1)) for i in range(max_frames)})


def frame_batches(count: int, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch: a random permutation of ``count`` frames cut into batches."""
    order = torch.randperm(count, generator=generator)
    return list(order.split(batch))
