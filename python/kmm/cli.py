"""The ``kmm`` command line. Each subcommand lives in ``kmm.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
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
    try:
        return int(args.func(args) or 0)
    except KmmError as e:
        print(f"kmm {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
