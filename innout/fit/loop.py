"""The optimisation loop every stage shares: seeded steps, periodic checkpoints, resume, progress.

Each step seeds torch's generator with (seed, step), so the frames drawn and the ray jitter of step i
are the same whether the run went straight through or was resumed from a checkpoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..progress import Progress


@dataclass
class LoopState:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def lr_schedule(step: int, total: int, base: float, rampup: float = 0.0, rampdown: float = 0.0) -> float:
    """Linear ramp-up over the first ``rampup`` share of steps, cosine ramp-down over the last ``rampdown``."""
    t = step / max(1, total)
    scale = 1.0
    if rampdown > 0:
        scale = min(1.0, 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / rampdown)))
    if rampup > 0:
        scale *= min(1.0, t / rampup)
    return base * scale


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run_loop(
    stage: str,
    total: int,
    step_fn: Callable[[int], dict[str, float]],
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    seed: int,
    checkpoint: Path | None = None,
    every: int = 100,
    progress: Progress | None = None,
    lr_fn: Callable[[int], list[float]] | None = None,
) -> list[dict[str, float]]:
    """Run steps ``[start, total)``; ``step_fn(i)`` computes the loss, calls backward and returns the
    loss terms. The optimiser steps here. ``params`` are what a checkpoint saves and a resume restores."""
    state = LoopState()
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True, map_location="cpu")
        with torch.no_grad():
            for name, tensor in params.items():
                tensor.copy_(saved["params"][name])
        optimizer.load_state_dict(saved["optimizer"])
        state = LoopState(saved["step"], saved["history"])
    for i in range(state.step, total):
        if lr_fn is not None:
            for group, lr in zip(optimizer.param_groups, lr_fn(i), strict=True):
                group["lr"] = lr
        torch.manual_seed(seed * 1_000_003 + i)
        optimizer.zero_grad(set_to_none=True)
        losses = step_fn(i)
        optimizer.step()
        state.history.append(losses)
        state.step = i + 1
        if progress is not None:
            progress(stage, i + 1, total, losses)
        if checkpoint is not None and (state.step % every == 0) and state.step < total:
            save_atomic(
                {
                    "params": {k: v.detach().cpu() for k, v in params.items()},
                    "optimizer": optimizer.state_dict(),
                    "step": state.step,
                    "history": state.history,
                },
                checkpoint,
            )
    return state.history
