"""The app as a ZeroGPU Space runs it (issue 38): with the real ``spaces`` package installed (it does nothing off
ZeroGPU hardware) and ``SPACE_ID`` set, every GPU-bound handler is a ``spaces.GPU`` function declaring at most 120 s,
and a fit ends through several slices, one GPU call each, with the scene of an uninterrupted fit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spaces = pytest.importorskip("spaces", reason="the spaces package (requirements-dev.txt) is not installed")

CHECK = r"""
import json
from innout.app import handlers, api
from innout.app.runtime import on_zero_gpu, MAX_GPU_SECONDS
names = ["fit_slice", "render_view", "run_export", "learn_directions"]
report = {n: getattr(getattr(handlers, n), "gpu_duration", None) for n in names}
print(json.dumps({"on": on_zero_gpu(), "max": MAX_GPU_SECONDS, "durations": report,
                  "run_fit_on_gpu": hasattr(handlers.run_fit, "gpu_duration")}))
"""


def test_every_gpu_handler_is_a_spaces_gpu_call_of_at_most_120_s():
    env = {**os.environ, "SPACE_ID": "innout/studio-test", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["on"] is True and report["max"] == 120
    assert all(d is not None and 0 < d <= 120 for d in report["durations"].values()), report
    assert report["run_fit_on_gpu"] is False  # the fit's outer loop holds no GPU: each slice is its own call


def test_a_fit_on_zero_gpu_runs_as_slices_and_ends_with_the_straight_fits_scene(tmp_path, monkeypatch):
    import torch

    from innout.app import handlers
    from innout.app.runtime import Runtime
    from innout.app.session import StudioSession
    from innout.app.ui import build_ui
    from innout.eg3d.random import random_generator
    from innout.scene import load_scene

    clip = ROOT / "assets" / "examples" / "world_sunglasses"
    if not clip.is_dir():
        pytest.skip(f"{clip} is missing")
    monkeypatch.setenv("SPACE_ID", "innout/studio-test")
    monkeypatch.setattr(handlers, "SLICE_SECONDS", 0.0)  # a checkpoint and a new GPU call after every step
    monkeypatch.setenv("INNOUT_CACHE_DIR", str(tmp_path / "cache"))
    runtime = Runtime(device="cpu", generator=random_generator("tiny"), label="tiny")
    page = build_ui(runtime).studio_page

    def session_with_clip(name: str) -> StudioSession:
        session = StudioSession(runtime, tmp_root=tmp_path / name)
        session.prepare(clip, max_seconds=60)
        return session

    def fit(session: StudioSession, workdir: Path):
        from innout.fit import get_preset, scaled

        config = scaled(get_preset("preview"), 0.05)
        config.max_frames = 2
        monkeypatch.setattr("innout.app.session.get_preset", lambda _: config)
        session.request_fit()
        answers = list(handlers.run_fit(page, str(workdir), session, "preview", 2, 1.0, None))
        assert page.fit.status in answers[-1] and answers[-1][page.fit.status].startswith("**Done.**"), answers[-1]
        return load_scene(session.scene_path)

    sliced_session = session_with_clip("a")
    sliced = fit(sliced_session, tmp_path / "fit-a")
    assert sliced_session.last_fit_slices > 2  # several GPU calls
    monkeypatch.delenv("SPACE_ID")  # off ZeroGPU: one call, no budget
    straight_session = session_with_clip("b")
    straight = fit(straight_session, tmp_path / "fit-b")
    assert straight_session.last_fit_slices == 1
    torch.testing.assert_close(sliced.ws, straight.ws, rtol=0, atol=0)
    for name, value in straight.ood.state_dict().items():
        torch.testing.assert_close(sliced.ood.state_dict()[name], value, rtol=0, atol=0)
