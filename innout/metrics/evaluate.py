"""The paper's reconstruction table: LPIPS, L2, SSIM, PSNR, identity similarity, mean over frames.

``evaluate_frames`` is the library API (the fitting benchmark uses it); ``python -m innout eval`` wraps it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from .identity import FaceEmbedder, cosine, make_embedder
from .image import mse, psnr_from_mse, ssim
from .perceptual import get_lpips

COLUMNS = ("lpips", "l2", "ssim", "psnr", "id")
HEADERS = {"lpips": "LPIPS ↓", "l2": "L2 ↓", "ssim": "SSIM ↑", "psnr": "PSNR ↑", "id": "ID ↑"}


@dataclass
class EvalReport:
    means: dict[str, float]
    per_frame: list[dict[str, float]]
    lpips_net: str
    identity_backend: str | None
    frames_without_face: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        cells = [f"{self.means[c]:.4f}" if c != "psnr" else f"{self.means[c]:.2f}" for c in COLUMNS]
        width = [max(len(HEADERS[c]), len(v)) for c, v in zip(COLUMNS, cells, strict=True)]
        head = " | ".join(HEADERS[c].ljust(w) for c, w in zip(COLUMNS, width, strict=True))
        row = " | ".join(v.ljust(w) for v, w in zip(cells, width, strict=True))
        lines = [head, "-|-".join("-" * w for w in width), row, ""]
        lines.append(
            f"{len(self.per_frame)} frames; LPIPS-{self.lpips_net}; L2 = MSE and PSNR on [0, 1]; "
            f"SSIM Gaussian 11x11 sigma 1.5; ID = cosine similarity ({self.identity_backend or 'not computed'})"
        )
        lines.extend(self.notes)
        return "\n".join(lines)

    def write_json(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(_finite(asdict(self)), f, indent=1)

    def write_csv(self, path: str | os.PathLike) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["frame", *COLUMNS])
            for i, row in enumerate(self.per_frame):
                writer.writerow([i, *(row[c] for c in COLUMNS)])
            writer.writerow(["mean", *(self.means[c] for c in COLUMNS)])


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _to_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def evaluate_frames(
    pred: Sequence[np.ndarray],
    target: Sequence[np.ndarray],
    *,
    lpips_net: str = "alex",
    identity: str | FaceEmbedder | None = "sface",
    device: str = "cpu",
    batch_size: int = 4,
    progress: bool = True,
) -> EvalReport:
    """Compare predicted and target frames (HxWx3 uint8 RGB, same count and size)."""
    if len(pred) != len(target):
        raise ValueError(f"frame counts differ: {len(pred)} predicted vs {len(target)} target")
    if not pred:
        raise ValueError("no frames to evaluate")
    for i, (p, t) in enumerate(zip(pred, target, strict=True)):
        if p.shape != t.shape:
            raise ValueError(f"frame {i}: sizes differ ({p.shape} vs {t.shape}); resize one side first")
    embedder = make_embedder(identity) if isinstance(identity, str) else identity
    model = get_lpips(lpips_net, device)
    rows: list[dict[str, float]] = []
    missing: list[int] = []
    with torch.no_grad():
        for start in tqdm(range(0, len(pred), batch_size), desc="evaluating", unit="batch", disable=not progress):
            a = _to_tensor(pred[start : start + batch_size]).to(device)
            b = _to_tensor(target[start : start + batch_size]).to(device)
            lp = model(a, b).cpu().tolist()
            l2 = mse(a, b).cpu().tolist()
            ss = ssim(a, b).cpu().tolist()
            for j in range(a.shape[0]):
                idx = start + j
                sim = float("nan")
                if embedder is not None:
                    sim = cosine(embedder.embed(pred[idx]), embedder.embed(target[idx]))
                    if math.isnan(sim):
                        missing.append(idx)
                rows.append({"lpips": lp[j], "l2": l2[j], "ssim": ss[j], "psnr": psnr_from_mse(l2[j]), "id": sim})
    means = {c: float(np.mean([r[c] for r in rows])) for c in ("lpips", "l2", "ssim", "psnr")}
    ids = [r["id"] for r in rows if not math.isnan(r["id"])]
    means["id"] = float(np.mean(ids)) if ids else float("nan")
    notes = []
    if missing:
        notes.append(f"ID: no face detected in {len(missing)} frame(s) ({missing[:20]}); the mean is over the others")
    return EvalReport(means, rows, lpips_net, embedder.name if embedder else None, missing, notes)
