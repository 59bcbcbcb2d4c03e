from __future__ import annotations

import sys

import pytest

from innout.bench import generator
from innout.runtime import keep_freed_memory


def test_keep_freed_memory(monkeypatch):
    assert keep_freed_memory() is sys.platform.startswith("linux")
    monkeypatch.setenv("INNOUT_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


def test_generator_benchmark_prints_one_line_per_case(capsys):
    assert generator.main(["mapping", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("generator/mapping: median=") and "device=cpu" in lines[0] and "peak_rss=" in lines[0]


def _world_report(iou_last: float) -> dict:
    point = {"psnr_ood": 12.0, "removal_psnr_ood": 20.0, "input_vs_clean_psnr_ood": 8.0}
    curve = [{"iterations": 20, "iou": 0.5, **point}, {"iterations": 60, "iou": iou_last, **point, "psnr_ood": 14.5}]
    innout = {**curve[-1], "curve": curve}
    innout.pop("iterations")
    return {"objects": {"nose": {"innout": innout, "w+": {"psnr_ood": 9.0, "iou": None}}}}


def test_the_curves_summary_reads_each_point_and_the_margins_over_w_plus_and_the_input(tmp_path, capsys):
    import json

    from innout.bench import curves

    paths = []
    for name, iou in (("a", 0.61), ("b", 0.07)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(_world_report(iou)))
    figure = tmp_path / "curves.png"
    assert curves.main([str(p) for p in paths] + ["--labels", "default,change", "--figure", str(figure)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["nose", "innout", "default"]
    assert "20:0.50/12.0 60:0.61/14.5" in lines[0] and "60:0.07/14.5" in lines[1]
    assert "in-object - W+ 5.5 dB" in lines[0] and "removal - input (in object) 12.0 dB" in lines[0]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert curves.main([str(paths[0]), "--labels", "default", "--markdown"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2] == "| nose | innout | default | 0.50 / 0.61 | 12.0 / 14.5 | 5.5 | 12.0 |"
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(SystemExit):
        curves.main([str(bad)])
