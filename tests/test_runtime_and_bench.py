from __future__ import annotations

import sys

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
