"""Validated settings: dataclasses whose every field declares what it may hold, checked on every assignment.

Every field declares a spec (``setting(default, spec, help)``); every assignment is checked against it
(``Settings.__setattr__``): the dataclass constructor, ``dataclasses.replace``, ``--set``, presets,
``from_dict`` and plain ``cfg.joint.lr = ...`` alike, so a bad value is refused before any work starts.
Names that are no field are refused too (a typo must not pass as a new attribute). The fit's settings
(``innout.fit.config``) are built on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .errors import UserError
from .numbers import Range


class SettingError(UserError, ValueError):
    """A setting that does not exist, or a value outside its documented range (named in the message)."""


class Spec:
    """What one setting may hold: ``check`` a Python value, ``parse`` one written as text (``--set``)."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, key: str) -> Any:
        raise NotImplementedError

    def parse(self, text: str, key: str) -> Any:
        return self.check(text, key)

    def refuse(self, key: str, value: Any) -> SettingError:
        return SettingError(f"{key} must be {self.describe()}, got {value!r}")


@dataclass(frozen=True)
class Number(Spec):
    """A finite integer or real in a documented range (``innout.numbers.Range``)."""

    range: Range

    def describe(self) -> str:
        return self.range.describe()

    def check(self, value: Any, key: str) -> Any:
        return self.range.check(value, key, SettingError)

    def parse(self, text: str, key: str) -> Any:
        return self.range.parse(text, key, SettingError)


@dataclass(frozen=True)
class Choice(Spec):
    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def check(self, value: Any, key: str) -> Any:
        if value not in self.options:
            raise self.refuse(key, value)
        return value

    def parse(self, text: str, key: str) -> Any:
        return self.check(str(text).strip(), key)


@dataclass(frozen=True)
class Flag(Spec):
    TRUE: ClassVar[tuple[str, ...]] = ("1", "true", "yes", "on")
    FALSE: ClassVar[tuple[str, ...]] = ("0", "false", "no", "off")

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, bool):
            raise self.refuse(key, value)
        return value

    def parse(self, text: str, key: str) -> Any:
        word = str(text).strip().lower()
        if word in self.TRUE or word in self.FALSE:
            return word in self.TRUE
        raise self.refuse(key, text)


@dataclass(frozen=True)
class Name(Spec):
    def describe(self) -> str:
        return "a non-empty name"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(key, value)
        return value


@dataclass(frozen=True)
class SamplesPerRay(Spec):
    """(coarse, fine) samples per ray, or None for the generator's own."""

    coarse: Range = Range(1, 1024, integer=True)
    fine: Range = Range(0, 1024, integer=True)

    def describe(self) -> str:
        return f"none or COARSE,FINE with coarse {self.coarse.describe()} and fine {self.fine.describe()}"

    def check(self, value: Any, key: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise self.refuse(key, value)
        return self.coarse.check(value[0], f"{key} (coarse)", SettingError), self.fine.check(
            value[1], f"{key} (fine)", SettingError
        )

    def parse(self, text: str, key: str) -> Any:
        text = str(text).strip()
        if text.lower() in ("none", "null"):
            return None
        parts = text.strip("()[] ").split(",")
        if len(parts) != 2:
            raise self.refuse(key, text)
        return self.check(
            (self.coarse.parse(parts[0], f"{key} (coarse)", SettingError),
             self.fine.parse(parts[1], f"{key} (fine)", SettingError)), key,
        )  # fmt: skip


@dataclass(frozen=True)
class Section(Spec):
    """A group of settings (another ``Settings`` dataclass)."""

    kind: type

    def describe(self) -> str:
        return f"a {self.kind.__name__}"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, self.kind):
            first = next(iter(specs_of(self.kind)))
            raise SettingError(f"{key!r} is a group of settings; set its fields, e.g. {key}.{first}=VALUE")
        return value


def setting(default: Any, spec: Spec, help: str = "") -> Any:  # noqa: A002 - argparse's word for it
    """A dataclass field whose values are checked against ``spec``; ``help`` is its one line for
    ``--set help`` (what it does and what its values mean; the measurements behind a default go to docs)."""
    return field(default=default, metadata={"spec": spec, "help": help})


def section(kind: type, help: str = "") -> Any:  # noqa: A002
    return field(default_factory=kind, metadata={"spec": Section(kind), "help": help})


def specs_of(kind: type) -> dict[str, Spec]:
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(kind)}


class Settings:
    """Base of the configuration dataclasses: every assignment is checked against its field's spec, and
    names no field are refused (a typo must not pass as a new attribute). ``group`` prefixes the names
    in messages (``joint.lr``)."""

    group: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        specs = specs_of(type(self))
        if name not in specs:
            raise SettingError(f"unknown setting {self.key(name)!r} (known here: {', '.join(sorted(specs))})")
        super().__setattr__(name, specs[name].check(value, self.key(name)))

    def key(self, name: str) -> str:
        return f"{self.group}.{name}" if self.group else name

    def validate(self) -> None:
        """Check every field again, groups included (values put in by other means than assignment)."""
        for name, spec in specs_of(type(self)).items():
            value = getattr(self, name)
            spec.check(value, self.key(name))
            if isinstance(value, Settings):
                value.validate()


S = TypeVar("S", bound=Settings)


def set_dotted(cfg: Settings, dotted: str, value: Any) -> None:
    """Set ``section.field`` (or a whole section from a dict) on ``cfg``; text is parsed by the field's spec."""
    *parents, leaf = dotted.split(".")
    target = cfg
    for part in parents:
        specs = specs_of(type(target))
        if not isinstance(specs.get(part), Section):
            groups = sorted(k for k, s in specs.items() if isinstance(s, Section)) or ["none"]
            name = target.key(part)
            raise SettingError(f"unknown setting {dotted!r} ({name!r} is no group; groups: {', '.join(groups)})")
        target = getattr(target, part)
    specs = specs_of(type(target))
    if leaf not in specs:
        raise SettingError(f"unknown setting {target.key(leaf)!r} (known here: {', '.join(sorted(specs))})")
    spec, key = specs[leaf], target.key(leaf)
    if isinstance(spec, Section) and isinstance(value, dict):  # a group from a dict: field by field
        for sub, sub_value in value.items():
            set_dotted(getattr(target, leaf), str(sub), sub_value)
        return
    setattr(target, leaf, spec.parse(value, key) if isinstance(value, str) else value)


def apply_overrides(cfg: S, overrides: list[str]) -> S:
    """Apply ``section.field=value`` strings (e.g. ``joint.iterations=200``, ``init.samples_per_ray=16,16``);
    a name that is no setting or a value outside the setting's range raises ``SettingError`` at once."""
    for item in overrides:
        if "=" not in item:
            raise SettingError(f"--set takes KEY=VALUE (e.g. joint.iterations=200), got {item!r}")
        key, value = item.split("=", 1)
        set_dotted(cfg, key.strip(), value)
    cfg.validate()
    return cfg


def settings_help(cfg: Settings) -> list[str]:
    """One line per setting of ``cfg`` (groups included): its dotted name, its value in ``cfg``, what it may
    hold, and its help: what ``--set help`` prints."""
    lines = []
    for f in dataclasses.fields(cfg):
        value, spec, key = getattr(cfg, f.name), f.metadata["spec"], cfg.key(f.name)
        if isinstance(value, Settings):
            lines.append(f"[{key}] {f.metadata.get('help', '')}".rstrip())
            lines += settings_help(value)
            continue
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        text = f.metadata.get("help", "")
        lines.append(f"  {key}={shown}  ({spec.describe()}){'  ' + text if text else ''}")
    return lines
