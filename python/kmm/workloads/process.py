"""Processes: exec, page tables, slab, anonymous memory, touches and exit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._kmm import TraceEmitter, anon_times
from ..errors import ConfigError
from ..trace import OP_ALLOC, OP_FREE
from .context import Ctx
from .events import OP_ACCESS, Touches, events
from .kinds import K
from .params import PTES_PER_PGD_ENTRY, TASK_SLAB


def processes(
    ctx: Ctx,
    rng: np.random.Generator,
    prog: Sequence[str],
    start: np.ndarray,
    end: np.ndarray,
    anon: np.ndarray,
    pid: np.ndarray,
    *,
    touch_interval_us: float,
    short_frac: float,
    own_slab: bool = True,
    exits: bool = True,
) -> list[Procs]:
    """Events of ``P`` processes: exec, grow, touch, exit.

    Each process has an order-1 kernel stack, a pgd and PTE pages, (with
    ``own_slab``) its slab objects (``params.TASK_SLAB``, freed at exit), ``anon[p]`` anonymous pages faulted in over
    the first 90 % of its life (a ``short_frac`` of them freed early, the rest
    at exit), touches of those pages about every ``touch_interval_us``, and
    accesses to its program's text in the page cache at exec. A process that
    does not ``exit`` (a daemon: it outlives the load) has no frees at all,
    and its memory is not freed by :meth:`Load.stop`; ``end`` then only bounds
    its touches.
    """
    own = 1 if exits else 2  # events' proc: 2 = owned, but not freed at stop()
    P = start.shape[0]
    if P == 0:
        return []
    start = start.astype(np.int64)
    end = np.maximum(end.astype(np.int64), start + 10)
    anon = anon.astype(np.int64)
    n_pte = 2 + -(-anon // PTES_PER_PGD_ENTRY)
    slab_kinds = _SLAB_KINDS if own_slab else _SLAB_KINDS[:0]
    size = 2 + n_pte + slab_kinds.shape[0] + anon
    if exits:
        block = ctx.ids.block
        base = np.array([block(n, e) for n, e in zip(size.tolist(), end.tolist())], dtype=np.int64)
    else:
        base = ctx.ids.permanent(int(size.sum())) + np.cumsum(size) - size
    # The process's objects from base: the kernel stack (order 1) and the pgd
    # at exec; PTE pages, two at exec (text/libs, stack), the rest at times
    # uniform in the first 90 % of its life (the heap grows, u_pte); its slab
    # objects (slab_kinds) at exec; its program text and the part of libc it
    # uses, each page accessed in the first fifth of its life (text); the
    # anonymous pages, faulted over the first 90 % of its life, a short_frac
    # of them freed early, after an exponential tenth of its life, the rest
    # at exit; their touches, Poisson counts of mean life / touch interval,
    # each uniform in the page's life; at exit the frees of all but the text.
    # The engine makes the events from these draws (Procs), in that order.
    u_pte = rng.random(int(n_pte.sum()))
    text = []
    prog_arr = np.asarray(prog)
    for name in sorted(set(prog)):
        sel = np.nonzero(prog_arr == name)[0]
        pages = ctx.text_pages(name)
        text.append((sel, pages, rng.random(sel.shape[0] * pages.shape[0])))
    n_anon = int(anon.sum())
    u_alloc = rng.random(n_anon)
    u_short = rng.random(n_anon)
    frac = short_frac if exits else 0.0
    n_short = int(np.count_nonzero(u_short < frac))
    exp = rng.exponential(1.0, n_short) if n_short else _NONE
    # the touch counts (rng.poisson) and the touches' times (rng.random, one
    # each) are drawn by the engine from the generator's stream, which then
    # continues after them as if numpy had drawn them
    bg = rng.bit_generator
    st = bg.state
    if st["bit_generator"] != "PCG64":
        raise ConfigError(f"processes() draws from a PCG64 generator, not {st['bit_generator']}")
    inc = st["state"]["inc"]
    t_alloc, t_free, n_touch, touch_at, after = anon_times(
        start, end, anon, u_alloc, u_short, frac, exp, float(touch_interval_us),
        st["state"]["state"], inc,
    )
    st["state"] = {"state": after, "inc": inc}
    bg.state = st
    return [
        Procs(start, end, base, pid.astype(np.uint32, copy=False), n_pte, anon, u_pte,
              slab_kinds, text, t_alloc, t_free, n_touch, (touch_at, inc), own, exits)
    ]


_SLAB_KINDS = np.array([K[k] for k, n in TASK_SLAB for _ in range(n)], dtype=np.uint8)
_NONE = np.empty(0, np.float64)


class Procs:
    """The processes of one :func:`processes` call and their draws; the
    engine makes their events (``Emitter::push_procs``). :meth:`as_events`
    makes the same events in numpy (the reference the engine is tested
    against)."""

    __slots__ = ("anon", "base", "end", "exits", "n_pte", "n_touch", "own", "pid", "slab_kinds",
                 "start", "t_alloc", "t_free", "text", "touch_rng", "u_pte")

    def __init__(self, start, end, base, pid, n_pte, anon, u_pte, slab_kinds, text,
                 t_alloc, t_free, n_touch, touch_rng, own, exits) -> None:
        c64 = np.ascontiguousarray
        self.start, self.end, self.base = c64(start, np.int64), c64(end, np.int64), c64(base, np.int64)
        self.pid, self.n_pte, self.anon = c64(pid, np.uint32), c64(n_pte, np.int64), c64(anon, np.int64)
        self.u_pte, self.slab_kinds = c64(u_pte, np.float64), c64(slab_kinds, np.uint8)
        self.text = [(c64(s, np.int64), c64(p, np.uint32), c64(x, np.float64)) for s, p, x in text]
        self.t_alloc, self.t_free = c64(t_alloc, np.int64), c64(t_free, np.int64)
        self.n_touch = c64(n_touch, np.int64)
        self.touch_rng = (int(touch_rng[0]), int(touch_rng[1]))  # PCG64 (state, inc) of the touches' draws
        self.own, self.exits = int(own), bool(exits)

    @property
    def shape(self) -> tuple[int]:
        return (self.start.shape[0],)

    def push(self, em: TraceEmitter, g: int) -> None:
        """Add the events to the engine's buckets of window ``g``."""
        em.push_procs(g, self.start, self.end, self.base, self.pid, self.n_pte, self.anon,
                      self.u_pte, self.slab_kinds, self.text, self.t_alloc, self.t_free,
                      self.n_touch, *self.touch_rng, K["task_struct"], K["page_table"], K["anon_fault"],
                      K["pagecache_read"], self.own, self.exits)

    def as_events(self) -> list[np.ndarray]:
        """The events, as arrays of :data:`EV` (in the order the engine makes them)."""
        own, start, end, base, pid = self.own, self.start, self.end, self.base, self.pid
        P = start.shape[0]
        life = end - start
        grow_end = start + (life * 9) // 10
        n_pte, anon, slab_kinds = self.n_pte, self.anon, self.slab_kinds
        k_task, k_pt, k_anon = K["task_struct"], K["page_table"], K["anon_fault"]
        out = [
            events(start, OP_ALLOC, base, pid, k_task, order=1, proc=own),
            events(start, OP_ALLOC, base + 1, pid, k_pt, proc=own),
        ]
        r = np.repeat(np.arange(P), n_pte)
        j = np.arange(r.shape[0]) - np.repeat(np.cumsum(n_pte) - n_pte, n_pte)
        t_pte = np.where(j < 2, start[r], start[r] + (self.u_pte * (grow_end - start)[r]).astype(np.int64))
        pte_ids = base[r] + 2 + j
        out.append(events(t_pte, OP_ALLOC, pte_ids, pid[r], k_pt, proc=own))
        n_slab = np.full(P, slab_kinds.shape[0], dtype=np.int64)
        rs = np.repeat(np.arange(P), n_slab)
        js = np.arange(rs.shape[0]) - np.repeat(np.cumsum(n_slab) - n_slab, n_slab)
        slab_ids = base[rs] + 2 + n_pte[rs] + js
        slab_kind = slab_kinds[js]
        out.append(events(start[rs], OP_ALLOC, slab_ids, pid[rs], slab_kind, proc=own))
        for sel, pages, uu in self.text:
            npg = pages.shape[0]
            tt = np.repeat(start[sel], npg) + (uu * np.repeat(life[sel] // 5, npg)).astype(np.int64)
            out.append(events(tt, OP_ACCESS, np.tile(pages, sel.shape[0]), np.repeat(pid[sel], npg),
                              K["pagecache_read"], proc=0))
        n_anon = int(anon.sum())
        anon_ids = np.repeat(base + 2 + n_pte + n_slab - (np.cumsum(anon) - anon), anon) + np.arange(n_anon)
        pid_a = np.repeat(pid, anon)
        out.append(events(self.t_alloc, OP_ALLOC, anon_ids, pid_a, k_anon, proc=own))
        bg = np.random.PCG64()
        bg.state = {"bit_generator": "PCG64", "state": dict(zip(("state", "inc"), self.touch_rng)),
                    "has_uint32": 0, "uinteger": 0}
        u = np.random.Generator(bg).random(int(self.n_touch.sum()))
        out.append(Touches(u, self.n_touch, self.t_alloc, self.t_free, anon_ids, pid_a, k_anon,
                           own).as_events())
        if not self.exits:
            return out
        out.append(events(self.t_free, OP_FREE, anon_ids, pid_a, k_anon))
        out.append(events(end[r], OP_FREE, pte_ids, pid[r], k_pt))
        out.append(events(end, OP_FREE, base + 1, pid, k_pt))
        out.append(events(end[rs], OP_FREE, slab_ids, pid[rs], slab_kind))
        out.append(events(end, OP_FREE, base, pid, k_task, order=1))
        return out


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    """``n`` log-normal draws of the given median and sigma."""
    return median * np.exp(sigma * rng.standard_normal(n))
