"""The studio's bugs of issue 18, each put back into a copy of today's code by a patch (tests/regressions/*.patch):
the test that claims to catch the bug must fail on that copy, at the step that names it. Today's code passes the
same tests (the default run), so each bug is shown as a failing step before its fix and a passing one after.

A patch starts with its header (``Bug:`` the issue's words, ``Run:`` the tests to run in order, ``Fails:`` the one
that must fail, ``At:`` text of the failing step that the report must show), then a unified diff of today's code.
The default run checks that every patch still applies and names real tests; putting the bugs back and running
the tests is slow (a browser fit for each page bug: 13 min for the 21 patches on a 2-core CPU):
``python -m pytest -m slow tests/test_regressions.py``. To write one again (or a new one): put the bug back in a
working tree, ``git diff > tests/regressions/NN_name.patch``, restore the code, and add the header above the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if shutil.which("git") is None or not (ROOT / ".git").exists():
    pytest.skip("the regression patches are applied with git, in a git checkout", allow_module_level=True)
PATCHES = sorted((ROOT / "tests" / "regressions").glob("*.patch"))
FIELDS = ("Bug", "Run", "Fails", "At")


@dataclass
class Regression:
    bug: str
    run: list[str]
    fails: str
    at: str


def read_header(path: Path) -> Regression:
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(": ")
        fields[key] = value
    missing = [k for k in FIELDS if not fields.get(k)]
    assert not missing, f"{path.name}: the header lacks {missing}"
    return Regression(fields["Bug"], fields["Run"].split(), fields["Fails"], fields["At"])


def test_there_is_a_patch_for_each_bug_and_each_names_real_tests():
    numbers = [int(p.name.split("_")[0]) for p in PATCHES]
    assert numbers == list(range(1, len(PATCHES) + 1)) and len(PATCHES) >= 21, numbers  # none lost or renumbered
    for path in PATCHES:
        regression = read_header(path)
        assert regression.fails in regression.run, path.name
        for node in regression.run:
            file, _, name = node.partition("::")
            assert re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M), f"{path.name}: no test {node}"


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.stem)
def test_each_patch_applies_to_todays_code(patch):
    """A patch that no longer applies means the code it reverts has changed: write the patch again."""
    checked = subprocess.run(["git", "apply", "--check", str(patch)], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, f"{patch.name} no longer applies: {checked.stderr}"


def working_copy(dest: Path) -> None:
    """Today's files (tracked and untracked, not ignored) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.mark.slow
@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.stem)
def test_the_bug_put_back_fails_its_step(patch, tmp_path):
    regression = read_header(patch)
    if any("test_app_e2e.py" in node for node in regression.run) and not shutil.which("chromium"):
        pytest.skip("the browser tests need chromium: without it they skip, and nothing could fail")
    code = tmp_path / "code"
    working_copy(code)
    applied = subprocess.run(["git", "apply", str(patch)], cwd=code, capture_output=True, text=True)
    assert applied.returncode == 0, f"{patch.name} no longer applies: {applied.stderr}"
    env = dict(os.environ, INNOUT_TEST_ARTIFACTS=str(tmp_path / "artifacts"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *regression.run],
        cwd=code, capture_output=True, text=True, env=env, timeout=3600,
    )  # fmt: skip
    report = result.stdout + result.stderr
    (tmp_path / "report.txt").write_text(report)
    assert result.returncode == 1, f"the tests did not fail with {patch.name} applied:\n{report[-3000:]}"
    assert f"FAILED {regression.fails}" in report, report[-3000:]
    assert regression.at in report, f"{regression.fails} failed elsewhere than at {regression.at!r}:\n{report[-4000:]}"
