"""Options shared by subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import KmmError
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


# Output paths are checked before a command computes anything, so that a path
# that cannot be written does not lose a run's results at the end.


def check_output_file(opt: str, path: str | os.PathLike[str] | None, error: type[KmmError] = KmmError) -> None:
    """Raise ``error`` naming ``opt`` unless ``path`` (a file; None or '-':
    stdout) can be opened for writing. A file the check creates is removed."""
    if path is None or str(path) == "-":
        return
    p = Path(path)
    existed = p.exists()
    try:
        with open(p, "a"):
            pass
    except OSError as e:
        raise error(f"{opt} {path}: cannot be written ({e.strerror})") from None
    if not existed:
        p.unlink(missing_ok=True)


def check_output_dir(opt: str, path: str | os.PathLike[str] | None, error: type[KmmError] = KmmError) -> None:
    """Raise ``error`` naming ``opt`` unless directory ``path`` exists (it is
    made, with its parents, if not) and a file can be made in it."""
    if path is None:
        return
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise error(f"{opt} {path}: cannot be written ({e.strerror})") from None
