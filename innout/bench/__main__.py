"""``python -m innout.bench <benchmark> [options]``."""

import sys

BENCHMARKS = {
    "generator": "innout.bench.generator",
    "metrics": "innout.bench.metrics",
    "prepare": "innout.bench.prepare",
    "fit": "innout.bench.fit",
    "render": "innout.bench.render",
    "device": "innout.bench.device",
    "world": "innout.bench.world",
    "curves": "innout.bench.curves",
    "masks": "innout.bench.masks",
    "robustness": "innout.bench.robustness",
    "memory": "innout.bench.memory",
    "directions": "innout.bench.directions",
    "studio": "innout.bench.studio",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        names = ",".join(BENCHMARKS)
        print(f"usage: python -m innout.bench {{{names}}} [options]  (--help after a name for its options)")
        return 2
    import importlib

    return importlib.import_module(BENCHMARKS[sys.argv[1]]).main(sys.argv[2:])


sys.exit(main())
