"""Progress reports of long work (fits, exports): one callback type, and the command line's tqdm bars.

The app maps the same callbacks to Gradio's progress bar.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int, dict[str, float]], None]
"""progress(stage, done, total, last_losses): ``done`` of ``total`` steps of ``stage`` are finished."""


def tqdm_progress() -> Progress:
    """A progress callback drawing one tqdm bar per stage (the CLI's)."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def report(stage: str, done: int, total: int, losses: dict[str, float]) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="it", initial=done - 1)
        bar.update(done - bar.n)
        if losses:
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(losses.items())[:4]}, refresh=False)
        if done >= total:
            bar.close()

    return report
