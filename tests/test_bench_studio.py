"""``python -m innout.bench studio`` at a small size against the real app (the faces demo in a subprocess): clients
at once through the public API without an error, closed pages' folders gone, and an abandoned page released after
the server's idle time and told so when it comes back."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gradio_client", reason="the studio benchmark drives the app with gradio_client")

from innout.bench import studio  # noqa: E402
from innout.world.prior import ASSET  # noqa: E402


def test_the_studio_benchmark_loads_the_app_and_reclaims_closed_and_abandoned_pages(tmp_path, capsys):
    if not ASSET.is_file():
        pytest.skip(f"{ASSET} is missing: train it with `python -m innout.world train`")
    report_file = tmp_path / "studio.json"
    argv = ["--pages", "2", "--renders", "3", "--open-close", "2", "--abandoned", "1", "--idle-minutes", "0.05",
            "--json", str(report_file)]  # fmt: skip
    assert studio.main(argv) == 0
    report = json.loads(report_file.read_text())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "studio/alone", "studio/burst", "studio/vanished", "studio/pages", "studio/abandoned",
    ]  # fmt: skip
    burst = report["burst"]
    assert burst["renders"] == 6 and burst["errors"] == [] and 0 < burst["median_s"] <= burst["p95_s"]
    assert report["alone"]["errors"] == [] and report["vanished"]["errors"] == []
    pages = report["pages"]
    assert pages["errors"] == [] and pages["folders_after"] <= pages["folders_before"]
    abandoned = report["abandoned"]
    assert abandoned["folders_holding"] == 1 and abandoned["folders_after"] == 0
    assert "idle for over 0.05 minutes" in abandoned["comes_back"], abandoned["comes_back"]
