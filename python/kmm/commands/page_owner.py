"""``kmm page-owner``: aggregate page_owner dumps (``sort``) or make one (``dump``).

``kmm page-owner sort [FILE|-] [OUTPUT]`` reads a dump in the 2005
``/proc/page_owner`` format, today's ``/sys/kernel/debug/page_owner`` format or
a real kernel's, from a file, a pipe or stdin (it never stat()s its input, so
``kmm page-owner sort /sys/kernel/debug/page_owner`` works), and prints either
``Documentation/page_owner.c`` output (``--classic``) or ``page_owner_sort``
output with its options (``-t -m -s -p -P -n -a``, ``--sort``, ``--cull``,
``--pid/--tgid/--name``), or ``--folded`` stacks for flame graphs, or
``--json``.

``kmm page-owner diff OLD NEW`` compares two dumps (a leak hunt: dump, wait,
dump again) and lists the groups whose pages grew the most.

``kmm page-owner dump`` runs a kernel-build workload with an injected leak on
a simulated machine with page_owner and writes the dump.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import page_owner as po
from .._args import int_list_arg
from ..errors import ConfigError, PageOwnerError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "page-owner",
        help="aggregate page_owner dumps (sort), compare two (diff) or make one from a simulated leak (dump)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    psub = p.add_subparsers(dest="page_owner_command", metavar="{sort,diff,dump}")
    psub.required = True

    s = psub.add_parser(
        "sort",
        help="boil a page_owner dump down to its distinct records, most frequent first",
        description="Aggregate a page_owner dump: identical records are merged (ignoring the "
        "per-record ts and PFN lines) and printed with their counts. Reads a file, a pipe or "
        "stdin in bounded memory: a dump (2005 or today's), or page_owner_stacks files "
        "(show_stacks; show_handles, joined on the handle with a show_stacks_handles read first).",
    )
    s.add_argument("input", nargs="?", default="-", help="dump to read (default: - = stdin)")
    s.add_argument("output", nargs="?", default="-", help="where to write (default: - = stdout)")
    s.add_argument("--classic", action="store_true",
                   help="2005 Documentation/page_owner.c output: 'N times:' then the record")
    order = s.add_mutually_exclusive_group()
    for flag, key, text in (
        ("-t", "-times", "by times (default)"),
        ("-m", "-pages", "by total pages"),
        ("-s", "stacktrace", "by stack trace"),
        ("-p", "pid", "by pid"),
        ("-P", "tgid", "by tgid"),
        ("-n", "name", "by task command name"),
        ("-a", "alloc_ts", "by first allocation time"),
    ):
        order.add_argument(flag, dest="sort_key", action="store_const", const=key, help=f"sort {text}")
    order.add_argument("--sort", dest="sort_spec", metavar="KEYS",
                       help="sort by keys, e.g. 'n,+pid,-tgid' (ascending unless '-'): "
                       "p|pid tg|tgid n|name st|stacktrace T|txt at|alloc_ts ator|allocator t|times m|pages")
    s.add_argument("--cull", metavar="FIELDS",
                   help="merge records that agree on these fields: pid,tgid,name,stacktrace,allocator")
    s.add_argument("--pid", metavar="LIST", help="only these pids (comma separated)")
    s.add_argument("--tgid", metavar="LIST", help="only these tgids (comma separated)")
    s.add_argument("--name", metavar="LIST", help="only these task command names (comma separated)")
    s.add_argument("--folded", action="store_true",
                   help="folded stacks for flame graphs: root;...;leaf PAGES")
    s.add_argument("--json", action="store_true", help="JSON output")
    s.add_argument("--top", type=int, metavar="N", help="only the first N groups")
    s.add_argument("--lenient", action="store_true",
                   help="skip and count malformed records instead of stopping at the first")
    prog = s.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show a progress bar on stderr (default: when stderr is a terminal)")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    s.set_defaults(func=run_sort)

    df = psub.add_parser(
        "diff",
        help="compare two page_owner dumps: the groups whose pages grew the most",
        description="Aggregate two dumps (files or pipes, either format) the same way and list "
        "the groups with their pages before and after and the change, most growth first: the "
        "leak hunt of 'dump, wait, dump again'.",
    )
    df.add_argument("old", help="the earlier dump (- = stdin)")
    df.add_argument("new", help="the later dump (- = stdin)")
    df.add_argument("--cull", metavar="FIELDS", default="stacktrace",
                    help="compare groups of these fields (default: stacktrace; '' = whole records)")
    df.add_argument("--pid", metavar="LIST", help="only these pids (comma separated)")
    df.add_argument("--tgid", metavar="LIST", help="only these tgids (comma separated)")
    df.add_argument("--name", metavar="LIST", help="only these task command names (comma separated)")
    df.add_argument("--json", action="store_true", help="JSON output")
    df.add_argument("--top", type=int, metavar="N", help="only the first N rows")
    df.add_argument("--lenient", action="store_true",
                    help="skip and count malformed records instead of stopping at the first")
    df.set_defaults(func=run_diff)

    d = psub.add_parser(
        "dump",
        help="simulate a kernel build with a page leak and write the page_owner dump",
        description="Boot a machine with page_owner, run 'make -jJOBS' for SECONDS of simulated "
        "time with a leaking call site injected, and write /proc/page_owner (2005) or the "
        "debugfs page_owner (modern) text.",
    )
    d.add_argument("output", nargs="?", default="-", help="file to write (default: - = stdout)")
    d.add_argument("--format", choices=po.FORMATS, default="2005", help="dump format (default: 2005)")
    d.add_argument("--mem", default="256MiB", help="memory size (default: 256MiB, the article's box)")
    d.add_argument("--allocator", choices=("vanilla", "antifrag", "mobility"), default="vanilla")
    d.add_argument("--seconds", type=float, default=10.0, help="simulated seconds of load (default: 10)")
    d.add_argument("--jobs", type=int, default=2, help="make -j (default: 2)")
    d.add_argument("--leak-every", type=int, default=50,
                   help="one leaked page after every N trace operations (0: no leak; default: 50)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=run_dump)


def _open_out(path: str) -> Any:
    return sys.stdout.buffer if path == "-" else open(path, "wb")


def _cull_arg(text: str | None) -> list[str]:
    cull = [] if not text else [x.strip() for x in text.split(",") if x.strip()]
    for f in cull:
        if f not in po.CULL_FIELDS:
            raise PageOwnerError(f"unknown --cull field {f!r} (expected some of {', '.join(po.CULL_FIELDS)})")
    return cull


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "pids": int_list_arg("pid", args.pid),
        "tgids": int_list_arg("tgid", args.tgid),
        "names": None if args.name is None else [x for x in args.name.split(",") if x],
    }


def _top(args: argparse.Namespace) -> int | None:
    if args.top is not None and args.top < 0:
        raise ConfigError(f"--top must be >= 0, got {args.top}")
    return args.top


def _report_skips(cmd: str, rep: po.OwnerReport) -> None:
    st = rep.stats
    if st["skipped"]:
        print(f"kmm page-owner {cmd}: skipped {st['skipped']} malformed records", file=sys.stderr)
        for e in rep.errors[:5]:
            print(f"  {e}", file=sys.stderr)


def _write(path: str, render: Any) -> None:
    out = _open_out(path)
    try:
        render(out)
        out.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()


def run_sort(args: argparse.Namespace) -> int:
    cull = _cull_arg(args.cull)
    filters = _filters(args)
    keys = po.parse_sort(args.sort_spec) if args.sort_spec else po.parse_sort(args.sort_key or "-times")
    top = _top(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    fmt = "json" if args.json else "folded" if args.folded else "classic" if args.classic else "sort"
    rep = po.read(args.input, lenient=args.lenient, progress=progress, cull=cull, **filters)
    if args.lenient:
        _report_skips("sort", rep)
    t = rep.table
    _write(args.output, lambda out: t.render(out, fmt, t.order(keys), top))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    cull = _cull_arg(args.cull)
    filters = _filters(args)
    top = _top(args)
    if args.old == "-" and args.new == "-":
        raise ConfigError("at most one of OLD and NEW can be stdin")
    reps = [po.read(src, lenient=args.lenient, cull=cull, **filters) for src in (args.old, args.new)]
    if args.lenient:
        for r in reps:
            _report_skips("diff", r)
    old, new = (r.table for r in reps)
    _write("-", lambda out: new.diff(old, out, "json" if args.json else "sort", top))
    return 0


def run_dump(args: argparse.Namespace) -> int:
    from .. import workloads
    from ..machine import Machine

    if not 0 < args.seconds <= 3600:
        raise ConfigError(f"--seconds must be in (0, 3600], got {args.seconds}")
    if args.leak_every < 0:
        raise ConfigError(f"--leak-every must be >= 0, got {args.leak_every}")
    m = Machine(mem=args.mem, allocator=args.allocator, page_owner=True)
    stacks = po.workload_stacks(m)
    trace = workloads.kernel_build(args.jobs, seed=args.seed, stacks=stacks).trace(args.seconds)
    if args.leak_every:
        trace = workloads.inject_leak(trace, every=args.leak_every, stack=stacks["leak"])
        leak_pid = int(trace["pid"].max())
        m.page_owner.set_comm(leak_pid, "leakyd")
    m.replay(trace, outcomes=False)
    if args.output == "-":
        m.page_owner.dump(sys.stdout.buffer, args.format)
        sys.stdout.buffer.flush()
    else:
        m.page_owner.dump(args.output, args.format)
    return 0
