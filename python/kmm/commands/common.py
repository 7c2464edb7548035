"""Options shared by subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..machine import ALLOCATORS, LAYOUTS, Machine


def add_machine_options(p: argparse.ArgumentParser, *, mem: str = "1536MiB") -> None:
    g = p.add_argument_group("machine")
    g.add_argument("--layout", choices=LAYOUTS, default="x86_32", help="address layout (default: x86_32)")
    g.add_argument("--mem", default=mem, help=f"memory size, bytes or e.g. 1536MiB, 64GiB (default: {mem})")
    g.add_argument("--nodes", type=int, default=1, help="NUMA nodes (default: 1)")
    g.add_argument("--allocator", choices=ALLOCATORS, default="vanilla", help="allocator policy (default: vanilla)")


def machine_from_args(args: argparse.Namespace, **kw: Any) -> Machine:
    return Machine(layout=args.layout, mem=args.mem, nodes=args.nodes, allocator=args.allocator, **kw)


def write_json(obj: Any, dest: str | None = "-") -> None:
    """Write JSON to stdout (dest '-' or None) or to a file."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    if dest in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(dest, "w") as f:
            f.write(text)
