"""Benchmarks: ``python -m innout.bench <name>``. Each prints one line per figure with its configuration."""

from pathlib import Path

# the shared data folder beside the repository (real clips and photos; not part of the project)
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
