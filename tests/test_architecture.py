"""The house rules, checked on the source: arrows point down the pipeline, and each part imports only what
it may (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "innout"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path):
    """(module a statement names, the names it imports) for every import in the file, at any depth, relative
    imports resolved against the file's package."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            yield name, [alias.name for alias in node.names]


def imported_modules(path: Path) -> set[str]:
    """Every innout module a file imports (relative imports resolved), at any depth in the file."""
    found = set()
    for name, names in _imports(path):
        found.add(name)
        found |= {f"{name}.{n}" for n in names}  # `from .fit import config` imports a module
    return {m for m in found if m == "innout" or m.startswith("innout.")}


def modules_of(part: str) -> list[Path]:
    root = PACKAGE / part
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def existing(name: str) -> bool:
    parts = name.split(".")[1:]
    return (PACKAGE.joinpath(*parts).with_suffix(".py")).is_file() or PACKAGE.joinpath(*parts).is_dir()


def test_the_parts_above_the_fit_use_only_its_package_face():
    """app, export and cli reach the fit through ``innout.fit`` alone, never its modules."""
    offenders = []
    for part in ("app", "export", "cli"):
        for path in modules_of(part):
            for name in imported_modules(path):
                if name.startswith("innout.fit.") and existing(name):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_the_scene_and_the_renderer_never_import_what_sits_above_them():
    rules = {
        "scene": ("innout.fit", "innout.app", "innout.cli", "innout.export", "innout.bench"),
        "render": ("innout.eg3d", "innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export"),
        "eg3d": ("innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export", "innout.preprocess",
                 "innout.world", "innout.edit", "innout.bench"),
        "preprocess": ("innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export"),
        "edit": ("innout.fit", "innout.app", "innout.cli", "innout.export", "innout.world", "innout.bench"),
        "world": ("innout.app", "innout.cli", "innout.export", "innout.bench"),
        "metrics": ("innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export"),
        "fit": ("innout.app", "innout.cli", "innout.export"),
    }
    offenders = []
    for part, forbidden in rules.items():
        for path in modules_of(part):
            for name in imported_modules(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_imports():
    """The rules above would pass vacuously if the parser missed imports: it must find these."""
    assert "innout.fit" in imported_modules(PACKAGE / "cli" / "pipeline.py")
    assert "innout.render" in imported_modules(PACKAGE / "eg3d" / "generator.py")
    assert "innout.scene.composite" in imported_modules(PACKAGE / "fit" / "joint.py")


def test_every_user_error_derives_from_the_one_base_class():
    """Every exception class innout defines is a UserError, or is said not to be one (with the reason)."""
    import importlib
    import inspect

    from innout.errors import UserError

    not_user_errors = {
        "UnsafePickleError",  # raised for installed weight files, never for a user's input
        "MeasurementError",  # innout.bench.processes: a benchmark's own measurement failed, not a user's input
        "FitUnfinished",  # innout.fit.budget: a time slice ended as asked (the CLI exits 3), not a failure
    }
    missing = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__main__.py":
            continue  # running it is what importing it does
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue  # an optional package is missing here (the GPU machine has no gradio)
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            ours = cls.__module__ == mod.__name__ and issubclass(cls, Exception) and name not in not_user_errors
            if ours and not issubclass(cls, UserError):
                missing.append(f"{module}.{name}")
    assert not missing, missing


def import_edges(path: Path, modules: set[str]) -> set[str]:
    """The innout modules ``path`` makes Python load, at any depth in the file: ``from . import x`` of a
    submodule ``x`` loads ``x`` (its package is already loading), ``from .m import name`` loads ``m``."""
    edges = set()
    for name, names in _imports(path):
        submodules = {f"{name}.{n}" for n in names} & modules
        edges |= submodules if names and len(submodules) == len(names) else {name} | submodules
    return {m for m in edges if m in modules and m != _module_name(path)}


def import_circles() -> list[list[str]]:
    """Every set of innout modules that import one another in a circle (strongly connected, Tarjan)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: import_edges(p, set(paths)) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            circle = []
            while True:
                w = stack.pop()
                circle.append(w)
                if w == v:
                    break
            if len(circle) > 1:
                circles.append(sorted(circle))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_module_imports_itself_through_others():
    """No import circle in innout, lazy imports included (a lazy import hides a circle, it does not remove it)."""
    assert import_circles() == []


def test_the_circle_finder_sees_a_circle(tmp_path, monkeypatch):
    """The check above would pass vacuously if the finder missed circles: a made-up package with one must show it."""
    fake = tmp_path / "innout"
    (fake / "sub").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "sub" / "__init__.py").write_text("from . import a\n")
    (fake / "sub" / "a.py").write_text("def f():\n    from ..places import x\n")
    (fake / "places.py").write_text("from .sub.a import f\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert import_circles() == [["innout.places", "innout.sub.a"]]


def test_the_ground_floor_imports_nothing_above_it():
    """The ground floor sits under everything: its modules import only each other."""
    ground = {"places", "errors", "numbers", "settings", "storage", "safe_pickle", "weights"}
    ground = {f"innout.{name}" for name in ground}
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    offenders = [
        f"{name} imports {m}"
        for name in sorted(ground)
        for m in import_edges(PACKAGE / (name.split(".", 1)[1] + ".py"), modules)
        if m not in ground
    ]
    assert not offenders, offenders


def test_only_places_reads_the_folders_environment_variables():
    """$INNOUT_CACHE_DIR and $INNOUT_PRETRAINED_DIR are read in one module (innout/places.py); the GPU check
    may set them for the processes it starts."""
    import re

    read = re.compile(r"(environ\.get\(|getenv\(|environ\[)\s*\"INNOUT_(CACHE|PRETRAINED)_DIR\"\s*[,)\]](?!\s*=)")
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if read.search(p.read_text()))
    assert readers == ["places.py"]


def architecture_map() -> list[str]:
    """The paths the map in docs/architecture.md names, relative to innout/ (a package as ``name/``)."""
    import re

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    block = text.split("```\ninnout/\n", 1)[1].split("```", 1)[0]
    named, package = [], ""
    for line in block.splitlines():
        match = re.match(r"^( +)(\S+?(?:\.py|/))(?:\s|$)", line)
        if not match:
            continue
        if len(match.group(1)) == 2:
            package = match.group(2) if match.group(2).endswith("/") else ""
            named.append(match.group(2))
        else:
            named.append(package + match.group(2))
    return named


def test_the_architecture_map_matches_the_code():
    """Every module the map names exists, and every package and top-level module of innout is on the map."""
    named = architecture_map()
    missing = [n for n in named if not (PACKAGE / n).exists()]
    packages = {f"{p.parent.name}/" for p in PACKAGE.glob("*/__init__.py")}
    top = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    absent = sorted((packages | top) - set(named))
    assert not missing and not absent, f"named but missing: {missing}; not on the map: {absent}"
    assert "eg3d/building.py" in named and "places.py" in named  # the parser reads nested and top-level lines
