"""The house rules, checked on the source: arrows point down the pipeline, and each part imports only what
it may (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "innout"


def imported_modules(path: Path) -> set[str]:
    """Every innout module a file imports (relative imports resolved), at any depth in the file."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}  # `from .fit import config` imports a module
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
        "eg3d": ("innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export", "innout.preprocess"),
        "preprocess": ("innout.fit", "innout.scene", "innout.app", "innout.cli", "innout.export"),
        "edit": ("innout.fit", "innout.app", "innout.cli", "innout.export"),
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
        "CaseFailed",  # innout.bench.robustness: the outcomes of its cases, not errors a user causes
        "CaseSkipped",
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
