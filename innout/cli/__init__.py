"""``python -m innout``: the command line. One module per group of commands; ``common`` holds what they
share. Angles are in degrees everywhere on the command line.

A ``UserError`` (innout.errors) is printed as ``error: <message>`` with exit status 2, and so is an
``OSError`` (a read-only or full folder, a missing permission: the message names the path; ``-v`` shows
its traceback); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..errors import UserError
from ..storage import describe_os_error
from . import directions, models, pipeline, scene


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m innout", description="In-N-Out studio command line")
    parser.add_argument("--version", action="version", version=f"innout {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (models, pipeline, scene, directions):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..runtime import keep_freed_memory

    args = build_parser().parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system said no (read-only or full folder, missing permission): say where
        if args.verbose:
            raise
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
