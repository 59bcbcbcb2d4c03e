"""The README is a short front door; the docs hold the rest, and no link among them points nowhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

NODEPS = "pip install --no-deps -r requirements-nodeps.txt"
SET_UP_APP = f"pip install -r requirements.txt && {NODEPS} && python app.py"
SET_UP_TESTS = f"pip install -r requirements-dev.txt && {NODEPS} && python -m pytest"

# [text](target) or ![alt](target), with an optional "title"; the target has no spaces
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def markdown_files():
    return [README, *sorted(DOCS.glob("*.md"))]


def test_the_readme_is_at_most_300_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move detail into docs/"


def test_the_readme_names_the_two_set_up_commands():
    readme = README.read_text()
    assert SET_UP_APP in readme
    assert SET_UP_TESTS in readme


def test_every_relative_link_points_to_an_existing_file():
    broken = []
    for path in markdown_files():
        for target in LINK.findall(path.read_text()):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            file_part = target.split("#", 1)[0]
            if not (path.parent / file_part).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_link_pattern_sees_links_and_images():
    text = 'a [page](docs/x.md#part) and ![pic](images/y.png "title") and [web](https://example.org)'
    assert LINK.findall(text) == ["docs/x.md#part", "images/y.png", "https://example.org"]


def test_the_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and f"]({p.name})" not in index]
    assert not missing, missing
