"""Processes: exec, page tables, slab, anonymous memory, touches and exit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
) -> list[np.ndarray | Touches]:
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
    life = end - start
    grow_end = start + (life * 9) // 10
    anon = anon.astype(np.int64)
    n_pte = 2 + -(-anon // PTES_PER_PGD_ENTRY)
    slab_kinds = np.array([K[k] for k, n in TASK_SLAB for _ in range(n)], dtype=np.uint8)
    n_slab = np.full(P, slab_kinds.shape[0] if own_slab else 0, dtype=np.int64)
    size = 2 + n_pte + n_slab + anon
    if exits:
        base = np.array(
            [ctx.ids.block(int(size[p]), int(end[p])) for p in range(P)], dtype=np.int64
        )
    else:
        base = ctx.ids.permanent(int(size.sum())) + np.cumsum(size) - size
    k_task, k_pt, k_anon = K["task_struct"], K["page_table"], K["anon_fault"]
    out = []
    # task: kernel stack (order 1) and pgd
    out.append(events(start, OP_ALLOC, base, pid, k_task, order=1, proc=own))
    out.append(events(start, OP_ALLOC, base + 1, pid, k_pt, proc=own))
    # PTE pages: two at exec (text/libs, stack), the rest as the heap grows
    r = np.repeat(np.arange(P), n_pte)
    j = np.arange(r.shape[0]) - np.repeat(np.cumsum(n_pte) - n_pte, n_pte)
    t_pte = np.where(
        j < 2,
        start[r],
        start[r] + (rng.random(r.shape[0]) * (grow_end - start)[r]).astype(np.int64),
    )
    pte_ids = base[r] + 2 + j
    out.append(events(t_pte, OP_ALLOC, pte_ids, pid[r], k_pt, proc=own))
    if own_slab:
        rs = np.repeat(np.arange(P), n_slab)
        js = np.arange(rs.shape[0]) - np.repeat(np.cumsum(n_slab) - n_slab, n_slab)
        slab_ids = base[rs] + 2 + n_pte[rs] + js
        slab_kind = slab_kinds[js]
        out.append(events(start[rs], OP_ALLOC, slab_ids, pid[rs], slab_kind, proc=own))
    # text pages in the page cache
    prog_arr = np.asarray(prog)
    for name in sorted(set(prog)):
        sel = np.nonzero(prog_arr == name)[0]
        pages = ctx.text_pages(name)
        npg = pages.shape[0]
        tt = np.repeat(start[sel], npg) + (
            rng.random(sel.shape[0] * npg) * np.repeat(life[sel] // 5, npg)
        ).astype(np.int64)
        out.append(
            events(
                tt, OP_ACCESS, np.tile(pages, sel.shape[0]), np.repeat(pid[sel], npg),
                K["pagecache_read"], proc=0,
            )
        )
    # anonymous memory (per page: np.repeat of its process's values)
    n_anon = int(anon.sum())
    anon_ids = np.repeat(base + 2 + n_pte + n_slab - (np.cumsum(anon) - anon), anon) + np.arange(n_anon)
    pid_a = np.repeat(pid, anon)
    t_alloc = np.repeat(start, anon) + (
        rng.random(n_anon) * np.repeat(grow_end - start, anon)
    ).astype(np.int64)
    t_free = np.repeat(end, anon)
    short = rng.random(n_anon) < (short_frac if exits else 0.0)
    if short.any():
        early = t_alloc[short] + rng.exponential(1.0, short.sum()) * (np.repeat(life, anon)[short] / 10)
        t_free[short] = np.minimum(early.astype(np.int64), t_free[short])
    out.append(events(t_alloc, OP_ALLOC, anon_ids, pid_a, k_anon, proc=own))
    # touches: Poisson counts, then each one's time uniform in the page's
    # life (the engine makes the events from the draws: Touches)
    n_touch = rng.poisson((t_free - t_alloc) / touch_interval_us)
    u = rng.random(int(n_touch.sum()))
    out.append(Touches(u, n_touch, t_alloc, t_free, anon_ids, pid_a, k_anon, own))
    if not exits:
        return out
    # exit: anon, page tables, slab, then the task
    out.append(events(t_free, OP_FREE, anon_ids, pid_a, k_anon))
    out.append(events(end[r], OP_FREE, pte_ids, pid[r], k_pt))
    out.append(events(end, OP_FREE, base + 1, pid, k_pt))
    if own_slab:
        out.append(events(end[rs], OP_FREE, slab_ids, pid[rs], slab_kind))
    out.append(events(end, OP_FREE, base, pid, k_task, order=1))
    return out


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    """``n`` log-normal draws of the given median and sigma."""
    return median * np.exp(sigma * rng.standard_normal(n))
