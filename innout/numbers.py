"""Documented ranges of the numbers a user gives, and the one checker every boundary uses.

A NaN, an infinity or an absurd value (a frame rate of 0, minus five iterations) must be refused where
it enters (a setting, a command-line option, a render request, a camera, an export) with a message that
names it, not end minutes later as a traceback or as a black image written with exit status 0. Each
boundary declares its numbers as ``Range`` values and calls ``Range.check`` (Python values) or
``Range.parse`` (text); command-line options use ``Range.argtype``.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UserError


class NumberError(UserError, ValueError):
    """A number outside its documented range, or not a number at all."""


def _plain(value: Any) -> Any:
    """A one-element numpy or torch value as a Python number (other values unchanged)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _fmt(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


@dataclass(frozen=True)
class Range:
    """The numbers a value may take: finite always; an integer or a real; bounds inclusive unless open;
    ``optional``: None is allowed too. ``unit`` ends the description (e.g. 'degrees')."""

    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    unit: str = ""

    def describe(self) -> str:
        """E.g. 'an integer >= 1', 'a finite number > 0 and <= 240 (frames per second)'."""
        kind = "an integer" if self.integer else "a finite number"
        bounds = []
        if self.lo is not None:
            bounds.append(f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}")
        if self.hi is not None:
            bounds.append(f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}")
        text = f"{kind} {' and '.join(bounds)}".rstrip()
        if self.unit:
            text += f" ({self.unit})"
        return text + (", or none" if self.optional else "")

    def _refuse(self, name: str, value: Any, error: type[Exception]) -> Exception:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return error(f"{name} must be {self.describe()}, got {shown}")

    def check(self, value: Any, name: str, error: type[Exception] = NumberError) -> Any:
        """``value`` as an int or float when it lies in the range; else raise ``error`` naming ``name``."""
        value = _plain(value)
        if value is None:
            if self.optional:
                return None
            raise self._refuse(name, value, error)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._refuse(name, value, error)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float: out of every range
            raise self._refuse(name, value, error) from None
        if not math.isfinite(number):
            raise self._refuse(name, value, error)
        if self.integer and not (isinstance(value, numbers.Integral) or number.is_integer()):
            raise self._refuse(name, value, error)
        if self.lo is not None and (number < self.lo or (self.lo_open and number == self.lo)):
            raise self._refuse(name, value, error)
        if self.hi is not None and (number > self.hi or (self.hi_open and number == self.hi)):
            raise self._refuse(name, value, error)
        return int(value) if self.integer else number

    def parse(self, text: str, name: str, error: type[Exception] = NumberError) -> Any:
        """A number written as text (a ``--set`` value, an option), checked; 'none' where None is allowed."""
        text = str(text).strip()
        if self.optional and text.lower() in ("none", "null"):
            return None
        try:
            value: Any = int(text) if self.integer else float(text)
            return self.check(value, name, error)
        except (ValueError, error):  # shown as typed: 'got '0'', not 'got 0.0'
            raise self._refuse(name, text, error) from None

    def argtype(self) -> Callable[[str], Any]:
        """An argparse ``type=``: a value out of range is argparse's usage error (exit 2), which names the
        option itself ('argument --fps: must be ...')."""

        def convert(text: str) -> Any:
            try:
                return self.parse(text, "it")
            except NumberError as exc:
                raise argparse.ArgumentTypeError(str(exc).replace("it must", "must", 1)) from None

        convert.__name__ = self.describe()  # what argparse prints when the conversion itself fails
        return convert


FINITE = Range()
"""Any finite real number."""

SEED = Range(0, 2**32 - 1, integer=True)
"""A random seed: numpy's and torch's generators both take 0 .. 2^32 - 1."""
