"""The GPU check (`python -m innout.bench device`) runs end to end on a CPU at the tiny size, and its
pieces compute what they claim."""

from __future__ import annotations

import json
import tempfile

import pytest
import torch

from innout.bench import device
from innout.bench.stage_times import StepClock, extrapolate_fit, stage_steps
from innout.fit.presets import get_preset
from innout.runtime import set_precision


def test_dry_run_writes_every_section(tmp_path, monkeypatch):
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the check makes its work folder
    sections = "env,generator,render,iterations,fit,tests"
    code = device.main(["--device", "cpu", "--dry-run", "--out", str(out), "--sections", sections, "--carry", "none"])
    report = json.loads((out / "device.json").read_text())
    assert code == 0, (out / "device.md").read_text()
    assert list(report["sections"]) == sections.split(",")
    for name, rows in report["sections"].items():
        assert rows, name
        assert all(r.get("status", "ok") == "ok" for r in rows), (name, rows)
    names = {r["name"] for rows in report["sections"].values() for r in rows}
    assert {"frame fp32", "orbit 512 from cached tri-planes", "slider release (full quality)"} <= names
    compare = next(r for r in report["sections"]["fit"] if r["name"] == "complete fit: |PSNR tf32 - fp32|")
    assert compare["value"] == "not measured: no TF32 on a CPU"  # TF32 is CUDA's: one fit on a CPU
    assert "| fit | complete fit, fp32 |" in (out / "device.md").read_text()
    assert not list(scratch.iterdir())  # its work folder (weights, caches) is removed at the end


def test_stage_steps_count_the_paper_schedule():
    steps = stage_steps(get_preset("paper"), 200)
    assert steps["init"] == 500 * 200  # every candidate is compared with every frame
    assert steps["invert"] == 16 * 200 + 200 * 20  # M1 epochs over K = 16 frames, then M2 over all
    assert steps["joint"] == 10_000 and steps["ood head start"] == 300
    assert steps["superres"] == 100 * 200 and steps["superres_cache"] == 200
    fast = stage_steps(get_preset("fast"), 200)
    assert fast["invert"] == 4 * 100 + 50 * 20  # 4 frames a step
    assert steps["invert-w"] == (steps["invert"] if get_preset("paper").joint.guess_space == "w" else 0)
    with_w = get_preset("paper")
    with_w.joint.guess_space = "w"
    assert stage_steps(with_w, 200)["invert-w"] == steps["invert"]
    with_w.joint.bootstrap_steps, with_w.joint.lambda_guide = 0, 0.0  # no first guess is made
    assert stage_steps(with_w, 200)["invert-w"] == 0
    total = extrapolate_fit("preview", dict.fromkeys(steps, 1.0), 200)
    assert total["frames"] == 12  # the preview preset fits at most 12 frames
    assert total["total"] == sum(v for k, v in total.items() if k not in ("total", "frames"))


def test_precision_switch_is_scoped():
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    with set_precision("fp32"):
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    with set_precision("tf32"):
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before


def test_pack_round_trips_the_lpips_weights(tmp_path):
    manifest = device.pack(tmp_path / "carry")
    assert all(v["max_relative_change"] < 1e-3 for v in manifest["lpips"].values())
    device.unpack(tmp_path / "carry", tmp_path / "pretrained")
    assert sorted(p.name for p in (tmp_path / "pretrained").iterdir()) == [
        "lpips_v0.1_alex.safetensors",
        "lpips_v0.1_vgg.safetensors",
    ]


def test_step_clock_times_each_stage_apart(monkeypatch):
    """The joint stage reports its head start's steps first: the joint figure must not be their median."""
    clock = StepClock("cpu", echo=False)
    now = iter([1.0, 1.1, 1.2, 1.3, 1.4, 3.4, 5.4, 7.4])  # head start steps of 0.1 s, then joint steps of 2 s
    monkeypatch.setattr("innout.bench.stage_times.time.perf_counter", lambda: next(now))
    clock.last = 0.9
    for i in range(4):
        clock("ood head start", i + 1, 4, {})
    for i in range(3):
        clock("joint", i + 1, 3, {})
    assert clock.steady("joint") == pytest.approx(2.0) and clock.steady("ood head start") == pytest.approx(0.1)
    assert clock.steady("superres") == 0.0 and clock.steady() == pytest.approx(0.1)  # all steps: 4 of 0.1, 2 of 2
