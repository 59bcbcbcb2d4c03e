"""``python -m innout.bench robustness``: the robustness suite, run from a source checkout.

The hostile and broken inputs (zip bombs, hostile pickles, damaged caches, bad numbers, odd media), their
factories and the case runner are a test bench, not part of the product: they live in the repository's
``tests/hostile/`` and are not installed. This entry stays so that the command documented in
docs/robustness.md (and used by the GPU check's machines, which carry the tests) keeps working: it runs that
suite when the tests are beside the package and says where to find them otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    if not (REPO / "tests" / "hostile" / "cases.py").is_file():
        print(
            "error: the robustness suite is part of the source repository's tests (tests/hostile/), which are not "
            "installed with the package; run this command from a checkout of the repository",
            file=sys.stderr,
        )
        return 2
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.hostile.cases import main as run_suite

    return run_suite(argv)


if __name__ == "__main__":
    sys.exit(main())
