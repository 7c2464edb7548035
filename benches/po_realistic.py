"""Realistic page_owner dumps for the aggregator benchmarks (issue 10), and the
naive Python grouper they are compared with.

:func:`write_dump` writes a dump in today's debugfs format
(``mm/page_owner.c``'s ``print_page_owner``, Linux 6.x) whose content has the shape of
a real machine's rather than of kmm's own workloads, where records repeat:

- 4,000 distinct stacks of 6-16 frames (``symbol+0xoff/0xsize``), about 4 %
  of frames in a module (``[xfs]``, ``[ext4]``, ...), every stack starting
  with the allocator's own frames (``post_alloc_hook``, ``get_page_from_freelist``,
  ``__alloc_pages_noprof``) as real ones do;
- stack popularity long-tailed (Zipf, s = 1.1: a few stacks hold most
  records, most stacks a handful), which is what a real dump looks like;
- a different pid (and tgid) and an increasing, distinct ts on nearly every
  record, a hex PFN, the page and pageblock types and flags;
- the optional lines: ``Page has been migrated, last migrate reason: ...``
  (2 %), ``Slab cache page`` (on slab stacks), ``Charged to memcg ...`` (5 %).

Orders: 90 % order 0, then 1, 2, 3 and rarely 9. The generator is seeded
(deterministic) and streams to the file in batches, holding little memory.
"""

from __future__ import annotations

import random
from pathlib import Path

_ALLOC_HEAD = ["post_alloc_hook", "get_page_from_freelist", "__alloc_pages_noprof"]
_WORDS = ("page cache file inode dentry buffer block bio req skb sock tcp udp net dev napi "
          "alloc slab kmalloc vma mm fault anon swap lru folio xa radix rmap pte pmd pud zone "
          "node kthread work queue timer irq rcu task exec mmap brk read write sync flush "
          "journal extent btree iomap dma ring rx tx poll event pipe seq proc sys cgroup").split()
_MODULES = ["xfs", "ext4", "nvme", "i40e", "mlx5_core", "btrfs", "nf_conntrack", "kvm"]
_COMMS = ["systemd", "kworker/u8:2", "bash", "cc1", "ld", "make", "sshd", "java", "postgres",
          "nginx", "python3", "containerd", "kswapd0", "khugepaged", "rsyslogd", "chronyd",
          "dockerd", "node", "redis-server", "mysqld"]
_MASKS = [
    (0x140cca, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),
    (0xcc0, "GFP_KERNEL"),
    (0x152800, "GFP_NOWAIT|__GFP_NOWARN|__GFP_NORETRY"),
    (0x100cca, "GFP_HIGHUSER_MOVABLE"),
    (0x42800, "GFP_NOWAIT|__GFP_COMP"),
    (0x400dc0, "GFP_KERNEL_ACCOUNT|__GFP_ZERO"),
]
_TYPES = ["Movable", "Unmovable", "Reclaimable"]
_MIGRATE = ["compaction", "numa_misplaced", "memory_hotplug", "syscall_or_cpuset"]
_FLAGS = ["uptodate|lru|active", "uptodate|lru", "head", "referenced|uptodate|lru|mappedtodisk", ""]


def _stacks(rng: random.Random, n: int) -> list[tuple[str, bool]]:
    """n distinct stack texts (frame lines, each ending in a newline) and whether each is slab's."""
    names = [f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{rng.choice(_WORDS)}" for _ in range(3000)]
    out = []
    seen = set()
    while len(out) < n:
        depth = rng.randint(6, 16) - len(_ALLOC_HEAD)
        slab = rng.random() < 0.2
        mid = ["allocate_slab", "___slab_alloc", "kmem_cache_alloc_noprof"] if slab else []
        frames = _ALLOC_HEAD + mid + [rng.choice(names) for _ in range(max(1, depth - len(mid)))]
        lines = []
        for f in frames:
            size = rng.randrange(0x40, 0x800, 0x10)
            off = rng.randrange(0x4, size)
            mod = f" [{rng.choice(_MODULES)}]" if rng.random() < 0.04 and f not in _ALLOC_HEAD else ""
            lines.append(f" {f}+{off:#x}/{size:#x}{mod}\n")
        text = "".join(lines)
        if text not in seen:
            seen.add(text)
            out.append((text, slab))
    return out


def write_dump(path: Path, size: int, *, seed: int = 0, nr_stacks: int = 4000) -> tuple[int, int, int]:
    """Write about ``size`` bytes of dump to ``path``: (bytes, lines, records)."""
    rng = random.Random(seed)
    stacks = _stacks(rng, nr_stacks)
    weights = [1.0 / (r + 1) ** 1.1 for r in range(nr_stacks)]
    per_stack = [(rng.choice(_MASKS), rng.choice(_TYPES)) for _ in range(nr_stacks)]
    ts = 5_000_000_000
    pfn = 0x1000
    written = lines = records = 0
    with open(path, "w", buffering=1 << 20) as f:
        while written < size:
            picks = rng.choices(range(nr_stacks), weights=weights, k=4096)
            parts = []
            for si in picks:
                text, slab = stacks[si]
                (mask, names), typ = per_stack[si]
                r = rng.random()
                order = 0 if r < 0.9 else 1 if r < 0.95 else 2 if r < 0.98 else 3 if r < 0.999 else 9
                pid = rng.randint(1, 4_000_000)
                tgid = pid if rng.random() < 0.7 else rng.randint(1, 4_000_000)
                comm = rng.choice(_COMMS)
                ts += rng.randint(1, 20_000)
                pfn += (1 << order) + rng.randint(0, 64)
                flags = rng.choice(_FLAGS)
                fl = f"{flags}|node=0|zone=2" if flags else "node=0|zone=2"
                rec = (f"Page allocated via order {order}, mask {mask:#x}({names}), pid {pid}, tgid {tgid} "
                       f"({comm}), ts {ts} ns\n"
                       f"PFN {pfn:#x} type {typ} Block {pfn >> 9} type {typ} Flags {0x17ffffc0000000:#x}({fl})\n"
                       f"{text}")
                nl = 2 + text.count("\n") + 1
                if rng.random() < 0.02:
                    rec += f"Page has been migrated, last migrate reason: {rng.choice(_MIGRATE)}\n"
                    nl += 1
                if slab:
                    rec += "Slab cache page\n"
                    nl += 1
                if rng.random() < 0.05:
                    rec += f"Charged to memcg {rng.choice(['system.slice', 'user.slice', 'docker'])}\n"
                    nl += 1
                rec += "\n"
                parts.append(rec)
                lines += nl
                records += 1
            blob = "".join(parts)
            f.write(blob)
            written += len(blob)
    return written, lines, records


# The naive grouper, as a user would write it in 40 lines: read lines, key on
# the stack text, count records and pages. Run as a script in its own process.
NAIVE_GROUPER = r'''
import sys
def main(path):
    groups = {}
    stack = []
    order = 0
    in_rec = False
    with open(path, "rb") as f:
        for line in f:
            if line == b"\n":
                if in_rec:
                    key = b"".join(stack)
                    g = groups.get(key)
                    if g is None:
                        groups[key] = [1, 1 << order]
                    else:
                        g[0] += 1
                        g[1] += 1 << order
                stack = []
                in_rec = False
            elif line.startswith(b" "):
                stack.append(line)
            elif line.startswith(b"Page allocated via order "):
                order = int(line[25:line.index(b",")])
                in_rec = True
    out = sorted(groups.items(), key=lambda kv: -kv[1][0])
    w = sys.stdout.write
    for key, (n, p) in out:
        w(f"{n} times, {p} pages:\n{key.decode()}\n")
main(sys.argv[1])
'''
