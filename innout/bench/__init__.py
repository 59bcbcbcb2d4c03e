"""Benchmarks: ``python -m innout.bench <name>``. Each prints one line per figure with its configuration."""
