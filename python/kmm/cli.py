"""The ``kmm`` command line. Each subcommand lives in ``kmm.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import KmmError

#: Subcommand modules, in the order ``kmm --help`` lists them. Each defines
#: ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
COMMANDS = [
    "highalloc",
    "thpchallenge",
    "buddyinfo",
    "fraginfo",
    "page_owner",
    "xmit",
    "trace",
    "snapshot",
    "inspect",
    "sweep",
    "report",
    "replay",
    "record",
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kmm",
        description=(
            "kmm: how Linux manages physical memory and feeds packets to a NIC, simulated. "
            "Buddy allocator and anti-fragmentation (2005 and today), page_owner, NETIF_F_LLTX."
        ),
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"kmm {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"kmm.commands.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:  # started with stdout closed (`kmm CMD >&-`)
        if sys.stderr is not None:
            print(f"kmm {args.command}: error: standard output is closed", file=sys.stderr)
        return 1
    try:
        return int(args.func(args) or 0)
    except KmmError as e:
        print(f"kmm {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # a full disk (/dev/full), a closed stdout, an output file that cannot be written
        _quiet_stdout()
        what = e.strerror or type(e).__name__
        where = f" ({e.filename})" if e.filename else ""
        print(f"kmm {args.command}: error: cannot write output: {what}{where}", file=sys.stderr)
        return 1


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of a broken or
    full stdout does not print a second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
