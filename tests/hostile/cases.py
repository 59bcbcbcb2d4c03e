"""``python -m innout.bench robustness``: every hostile or broken input we know of, one line per case.

A case makes its hostile input in a fresh temporary folder (nothing large is committed) and runs the
project's own entry point on it: the command line in this process, or a loader. What counts as a pass:

- ``refused``: a ``UserError`` (the project's user-error type) whose message names the problem;
- ``recovered``: a damaged cache entry was detected and recomputed (the case checks the result);
- ``ok``: the input is valid after all and was handled (for example a 16-bit PNG).

Anything else (a traceback, exit status 0 with a wrong result, memory past the case's bound) is a failure,
printed with its exception. Cases live in this folder's modules (caches, files, inputs, numbers), each a ``CASES``
list; the tests run every case too (tests/test_robustness.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from innout.errors import UserError

CASE_MODULES = ("caches", "files", "inputs", "numbers")


class CaseFailed(AssertionError):  # noqa: N818 - reads as the outcome's name
    """The case ran but its outcome is wrong (e.g. exit 0 with a wrong result, memory past its bound)."""


class CaseSkipped(Exception):  # noqa: N818 - reads as the outcome's name
    """The case cannot be made on this machine (e.g. no way to make a read-only folder as root); says why."""


@dataclass(frozen=True)
class Case:
    """``run(folder)`` makes the hostile input in ``folder`` and runs it. It returns a short description of
    what happened when the input was handled ('ok' / 'recovered' outcomes) or raises the ``UserError`` the
    project answered with ('refused'); ``expect`` says which of the three is right."""

    name: str
    expect: str  # 'refused', 'recovered' or 'ok'
    run: Callable[[Path], str]
    slow: bool = False  # needs a minute or more (a generator, a fit): skipped by the tests' default run
    match: str | None = None  # for 'refused': a regular expression the message must contain (the check meant)


@dataclass
class Outcome:
    case: str
    outcome: str  # refused / recovered / ok / FAILED
    message: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.outcome != "FAILED"  # 'skipped' says why it could not be made here

    def line(self) -> str:
        message = " ".join(self.message.split())
        if len(message) > 220:
            message = message[:217] + "..."
        return f"{self.case:<44} {self.outcome:<9} {self.seconds:6.1f}s  {message}"


def run_case(case: Case) -> Outcome:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="innout-robust-") as folder:
        try:
            message = case.run(Path(folder))
            outcome = case.expect if case.expect in ("recovered", "ok") else "FAILED"
            if outcome == "FAILED":
                message = f"accepted without an error: {message}"
        except CaseSkipped as exc:
            outcome, message = "skipped", str(exc)
        except UserError as exc:
            outcome, message = ("refused", str(exc)) if case.expect == "refused" else ("FAILED", f"refused: {exc}")
            if outcome == "refused" and case.match and not re.search(case.match, message):
                outcome, message = "FAILED", f"refused by another check than /{case.match}/: {message}"
        except SystemExit as exc:  # a command line that exited: 2 after printing a user error is a refusal
            code = exc.code if isinstance(exc.code, int) else 1
            outcome = "refused" if code == 2 and case.expect == "refused" else "FAILED"
            message = f"exit status {exc.code}"
        except Exception as exc:
            outcome = "FAILED"
            message = f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=-2).splitlines()[-3].strip()}"
    return Outcome(case.name, outcome, message, time.perf_counter() - start)


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for name in CASE_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        cases.extend(module.CASES)
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"case names must be unique: {duplicates}")
    return cases


class CommandRefused(UserError):  # noqa: N818 - reads as the outcome's name
    """The command line printed ``error: ...`` (or argparse's usage error) and exited with status 2."""


def run_cli(argv: list[str]) -> str:
    """Run ``python -m innout <argv>`` in this process. Exit 2 with a message raises ``CommandRefused`` with
    that message; exit 0 returns the last line printed; any other ending propagates (a traceback)."""
    import contextlib
    import io

    from innout.cli import main as cli_main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    text = err.getvalue().strip()
    if code == 2:  # the message, not a progress bar's last state
        said = [line for line in text.replace("\r", "\n").splitlines() if "error:" in line]
        raise CommandRefused(said[-1].strip() if said else "exit status 2 without a message")
    if code != 0:
        raise CaseFailed(f"exit status {code}: {text[-300:]}")
    lines = (out.getvalue() + err.getvalue()).strip().splitlines()
    return f"exit 0: {lines[-1] if lines else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench robustness", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose name contains this text")
    parser.add_argument("--quick", action="store_true", help="leave out the slow cases (generators, fits)")
    parser.add_argument("--json", default=None, help="also write every outcome to this JSON file")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases() if (args.only is None or args.only in c.name) and not (args.quick and c.slow)]
    outcomes = []
    for case in cases:
        outcome = run_case(case)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
    failed = [o for o in outcomes if not o.passed]
    skipped = sum(o.outcome == "skipped" for o in outcomes)
    print(f"{len(outcomes) - len(failed) - skipped} of {len(outcomes)} cases handled; {len(failed)} failed; "
          f"{skipped} could not be made on this machine")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
