"""Shared state of a load: object ids, pids, files in the page cache, slab fill."""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..trace import OP_ALLOC
from .events import EV, NO_PIN, events
from .params import LIBC_PAGES, PROGRAMS
from .tree import TreeLayout


class Ids:
    """Object ids: permanent ranges for caches, recycled blocks for processes."""

    def __init__(self) -> None:
        self.top = 0  # ids below are in use or on a free list
        self.free: dict[int, list[int]] = {}  # size class (log2) -> heap of bases
        self.pending: list[tuple[int, int, int, int]] = []  # (end_us, seq, base, cls)
        self.seq = 0

    def permanent(self, n: int) -> int:
        base = self.top
        self.top += int(n)
        return base

    def block(self, n: int, end_us: int) -> int:
        """A block of ``n`` ids, returned to the pool once time passes ``end_us``."""
        cls = max(0, int(n - 1).bit_length())
        heap = self.free.get(cls)
        if heap:
            base = heapq.heappop(heap)
        else:
            base = self.top
            self.top += 1 << cls
        heapq.heappush(self.pending, (int(end_us), self.seq, base, cls))
        self.seq += 1
        return base

    def release_before(self, t_us: int) -> None:
        while self.pending and self.pending[0][0] < t_us:
            _, _, base, cls = heapq.heappop(self.pending)
            heapq.heappush(self.free.setdefault(cls, []), base)


class Ctx:
    """Everything the sources of one load share."""

    def __init__(self) -> None:
        self.ids = Ids()
        self.next_pid = 1000
        self.text: dict[str, np.ndarray] = {}  # program -> ids of its text pages
        self.trees: dict[str, TreeCache] = {}

    def pids(self, n: int) -> np.ndarray:
        """``n`` fresh pids."""
        p = np.arange(self.next_pid, self.next_pid + n, dtype=np.uint32)
        self.next_pid += n
        return p

    def text_pages(self, prog: str) -> np.ndarray:
        """Page-cache ids of a program's text plus the part of libc it uses."""
        if "libc" not in self.text:
            self.text["libc"] = self.ids.permanent(LIBC_PAGES) + np.arange(LIBC_PAGES)
        if prog not in self.text:
            n = PROGRAMS[prog][0]
            own = self.ids.permanent(n) + np.arange(n)
            self.text[prog] = np.concatenate([own, self.text["libc"]]).astype(np.uint32)
        return self.text[prog]

    def tree(self, name: str, layout: TreeLayout) -> TreeCache:
        """The ids of tree ``name`` on disk (one instance, shared by every load that names it)."""
        t = self.trees.get(name)
        if t is None:
            t = self.trees[name] = TreeCache(self.ids, layout)
        elif t.layout is not layout:
            raise ConfigError(f"two loads use the tree {name!r} with different layouts")
        return t


class TreeCache:
    """Page-cache, dentry and inode ids of one tree instance on disk."""

    def __init__(self, ids: Ids, layout: TreeLayout) -> None:
        self.layout = layout
        n = layout.nr_pages
        self.page_base = ids.permanent(n)
        self.file_off = np.concatenate([[0], np.cumsum(layout.pages)[:-1]]) + self.page_base
        # one dentry and one inode object per file (the engine packs them in slab pages)
        self.dentry_base = ids.permanent(layout.files)
        self.inode_base = ids.permanent(layout.files)

    def file_pages(self, files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, index into ``files`` of each page) of the given files."""
        npg = self.layout.pages[files]
        which = np.repeat(np.arange(files.shape[0]), npg)
        first = np.cumsum(npg) - npg
        pages = self.file_off[files][which] + (np.arange(which.shape[0]) - first[which])
        return pages.astype(np.uint32), which

    def dentry_obj(self, files: np.ndarray) -> np.ndarray:
        """The dentry object of each file."""
        return (self.dentry_base + files).astype(np.uint32)

    def inode_obj(self, files: np.ndarray) -> np.ndarray:
        """The inode object of each file."""
        return (self.inode_base + files).astype(np.uint32)


class NewObjects:
    """Slab objects created (a new file's dentry and inode, a written page's
    buffer head): one permanent object each, packed into slab pages by the engine."""

    def __init__(self, kind: int) -> None:
        self.kind = kind

    def add(self, ctx: Ctx, t: np.ndarray, pid: np.ndarray, pin: Any = NO_PIN) -> np.ndarray:
        """Objects created at times ``t`` by ``pid``; each pins ``pin`` (an
        object allocated before it: a new dentry pins its new inode)."""
        n = t.shape[0]
        if n == 0:
            return np.empty(0, EV)
        base = ctx.ids.permanent(n)
        return events(t, OP_ALLOC, base + np.arange(n), pid, self.kind, proc=0, pin=pin)


class SlabFill:
    """Block-device pages filled by objects (inode-table and directory blocks):
    a new page every ``per_page`` objects."""

    def __init__(self, kind: int, per_page: int) -> None:
        self.kind = kind
        self.per_page = per_page
        self.count = 0

    def add(self, ctx: Ctx, t: np.ndarray, pid: np.ndarray) -> np.ndarray:
        """Objects created at times ``t`` (sorted or not) by ``pid``: the slab-page events."""
        n = t.shape[0]
        if n == 0:
            return np.empty(0, EV)
        idx = self.count + np.arange(n)
        new = np.nonzero(idx % self.per_page == 0)[0]
        self.count += n
        if new.shape[0] == 0:
            return np.empty(0, EV)
        base = ctx.ids.permanent(new.shape[0])
        return events(t[new], OP_ALLOC, base + np.arange(new.shape[0]), pid[new], self.kind, proc=0)
