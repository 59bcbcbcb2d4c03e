"""What several commands share: the generator and device arguments, and the parsers of edits, angles and
layer lists. Every angle on the command line is in degrees."""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import UserError


class UsageError(UserError):
    """An argument the command cannot use; the message says which and what it takes."""


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
    from ..fit import random_generator
    from ..weights import resolve_eg3d_checkpoint

    if getattr(args, "random_generator", None):
        print(f"note: using an UNTRAINED random '{args.random_generator}' generator (for trying the flow only)")
        return random_generator(args.random_generator).to(device)
    return load(resolve_eg3d_checkpoint(args.checkpoint), device)


def parse_edits(items: list[str] | None) -> dict[str, float]:
    """``NAME=STRENGTH`` items -> {name: strength}."""
    edits = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            edits[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UsageError(f"--edit takes NAME=STRENGTH (e.g. smile=1.5), got {item!r}")
    return edits


def parse_angles(text: str | None, option: str = "--camera") -> tuple[float, float] | None:
    """``YAW,PITCH`` in degrees -> (yaw, pitch) in radians (the API's unit)."""
    if text is None:
        return None
    try:
        yaw, pitch = (math.radians(float(v)) for v in text.split(","))
    except ValueError as exc:
        raise UsageError(f"{option} takes YAW,PITCH in degrees (e.g. 20,-5), got {text!r}") from exc
    return yaw, pitch


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
