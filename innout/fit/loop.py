"""The optimisation loop every stage shares: seeded steps, periodic checkpoints, resume, progress.

Each step seeds torch's generator with (seed, step), so the frames drawn and the ray jitter of step i
are the same whether the run went straight through or was resumed from a checkpoint. Checkpoints are
content-addressed (``innout.storage.save_checkpoint``): a damaged or mismatched one is reported and the
stage starts over rather than resuming from it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import storage
from ..progress import Progress
from .budget import budget_spent, check_budget

log = logging.getLogger(__name__)


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


def latest_checkpoint(checkpoint: Path) -> Path | None:
    """The newest intact checkpoint saved under the name ``checkpoint`` (``<stem>-<hash>.pt`` beside it)."""
    return storage.latest_checkpoint(checkpoint.parent, checkpoint.stem) if checkpoint.parent.is_dir() else None


def _restore(path: Path, params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> LoopState | None:
    """Load a checkpoint into ``params`` and ``optimizer``; None (and the file discarded) when it does not fit
    them: other names or shapes, non-finite values, an unreadable optimizer state."""
    try:
        saved = storage.load_checkpoint(path)
        tensors = saved["params"]
        for name, tensor in params.items():
            value = tensors[name]
            if value.shape != tensor.shape or not bool(torch.isfinite(value).all()):
                raise ValueError(f"parameter {name} has shape {tuple(value.shape)} or non-finite values")
        state = LoopState(int(saved["step"]), list(saved["history"]))
        optimizer.load_state_dict(saved["optimizer"])  # first: if it does not fit, nothing was changed yet
        with torch.no_grad():
            for name, tensor in params.items():
                tensor.copy_(tensors[name])
        return state
    except (storage.CorruptEntryError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        storage.discard(path, f"it does not fit this stage: {exc}")
        return None


@dataclass(frozen=True)
class StageRun:
    """What every fit stage is run with, in one object: the seed its randomness comes from, the checkpoint file it
    resumes from and writes beside (None: none), and where its progress reports go."""

    seed: int = 0
    checkpoint: Path | None = None
    progress: Progress | None = None


DEFAULT_RUN = StageRun()


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
    fresh_start: Callable[[], None] | None = None,
    after_step: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Run steps ``[start, total)``; ``step_fn(i)`` computes the loss, calls backward and returns the
    loss terms. The optimiser steps here. ``params`` are what a checkpoint saves and a resume restores;
    ``checkpoint`` names them (``<stem>-<hash>.pt`` files are written beside it). ``fresh_start`` runs before
    step 0 when no checkpoint was restored (work whose result a checkpoint already holds); ``after_step(n)`` runs
    once the parameters hold ``n`` steps (e.g. to keep a snapshot of them)."""
    found = latest_checkpoint(checkpoint) if checkpoint is not None else None
    restored = _restore(found, params, optimizer) if found is not None else None
    state = restored or LoopState()
    if restored is None and fresh_start is not None:
        fresh_start()
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
        if after_step is not None:
            after_step(state.step)
        # a checkpoint every ``every`` steps, and one as soon as a time budget is spent (the slice ends there)
        if checkpoint is not None and state.step < total and (state.step % every == 0 or budget_spent()):
            storage.save_checkpoint(
                {
                    "params": {k: v.detach().cpu() for k, v in params.items()},
                    "optimizer": optimizer.state_dict(),
                    "step": state.step,
                    "history": state.history,
                },
                checkpoint.parent,
                checkpoint.stem,
            )
            check_budget(stage, state.step, total)  # a slice ends here, at a checkpoint the next slice resumes from
    return state.history
