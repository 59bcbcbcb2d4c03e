"""What several commands share: the generator and device arguments, the documented range of every number
an option takes, and the parsers of edits, angles and layer lists. Every angle on the command line is in
degrees.

A numeric option is declared with ``type=number(RANGE)``: argparse then refuses a value that is not a
finite number within the range (exit 2, 'argument --fps: must be ...') before the command starts.
"""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import UserError
from ..numbers import FINITE, Range


class UsageError(UserError):
    """An argument the command cannot use; the message says which and what it takes."""


def number(allowed: Range):
    """The argparse ``type`` of an option whose values must lie in ``allowed``."""
    return allowed.argtype()


finite_float = number(FINITE)
"""The argparse ``type`` of an option that takes any finite number (no NaN, no infinity)."""

# the documented ranges of the command line's numbers (angles in degrees)
YAW_DEGREES = Range(-180, 180, unit="degrees")
PITCH_DEGREES = Range(-90, 90, unit="degrees")
FRAME_INDEX = Range(0, None, integer=True)  # a fitted frame; its upper end is the scene's
FRAME_COUNT = Range(1, None, integer=True)  # --max-frames: at least one frame
TRUNCATION = Range(0, 2, unit="truncation psi; 1 is none, EG3D's scripts use 0.5-0.7")


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def add_generator_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", help="generator .pkl or .safetensors (default: $INNOUT_EG3D_CHECKPOINT, pretrained/)"
    )
    p.add_argument(
        "--random-generator", choices=["tiny", "ffhq"],
        help="use an untrained random generator instead of EG3D weights (to try the flow; results are noise)",
    )  # fmt: skip
    add_device_argument(p)


def load_generator(args: argparse.Namespace, device: str):
    """The generator of ``--checkpoint`` (downloaded on first use), or ``--random-generator``'s."""
    from ..eg3d import load_generator as load
    from ..eg3d.download import resolve_eg3d_checkpoint
    from ..eg3d.random import random_generator

    if getattr(args, "random_generator", None):
        print(f"note: using an UNTRAINED random '{args.random_generator}' generator (for trying the flow only)")
        return random_generator(args.random_generator).to(device)
    return load(resolve_eg3d_checkpoint(args.checkpoint), device)


def parse_edits(items: list[str] | None) -> dict[str, float]:
    """``NAME=STRENGTH`` items -> {name: strength}; each strength finite and within the scene's bound
    (``innout.scene.edits.EDIT_STRENGTH``)."""
    from ..scene.edits import EDIT_STRENGTH

    edits = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--edit takes NAME=STRENGTH (e.g. smile=1.5), got {item!r}")
        edits[name.strip()] = EDIT_STRENGTH.parse(value, f"--edit {name.strip()}: the strength", UsageError)
    return edits


def parse_angles(text: str | None, option: str = "--camera") -> tuple[float, float] | None:
    """``YAW,PITCH`` in degrees (yaw -180..180, pitch -90..90) -> (yaw, pitch) in radians (the API's unit)."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise UsageError(f"{option} takes YAW,PITCH in degrees (e.g. 20,-5), got {text!r}")
    yaw = YAW_DEGREES.parse(parts[0], f"{option}: the yaw", UsageError)
    pitch = PITCH_DEGREES.parse(parts[1], f"{option}: the pitch", UsageError)
    return math.radians(yaw), math.radians(pitch)


def parse_layers(text: str | None) -> list[int] | None:
    """``0-7`` or ``0,1,4-5`` -> sorted ws indices (None: all)."""
    if not text:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi or lo) + 1))
    except ValueError as exc:
        raise UsageError(f"--layers takes indices and ranges like 0-7 or 0,1,4-5, got {text!r}") from exc
    if any(not 0 <= i < 14 for i in layers):
        raise UsageError("--layers must be between 0 and 13 (EG3D has 14 ws)")
    return sorted(set(layers))


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)
