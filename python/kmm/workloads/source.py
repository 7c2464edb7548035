"""Sources: each produces the events of one window of simulated time."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._kmm import pcg64_seeded
from ..errors import ConfigError
from .context import Ctx


class Source:
    """A generator of events, one window of simulated time at a time."""

    seed: int
    stream: int

    def bind(self, ctx: Ctx) -> None:  # pragma: no cover - interface
        """Take the shared state of the load this source runs in (once, before generating)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover - interface
        """What this source runs, for :meth:`Load.describe` (times in seconds)."""
        raise NotImplementedError

    def generate(self, ctx: Ctx, w: int) -> list[np.ndarray]:  # pragma: no cover
        """The events of window ``w`` (windows are generated in order, each once)."""
        raise NotImplementedError

    def _rng(self, w: int) -> np.random.Generator:
        """The random stream of window ``w``: a function of seed, source and window only,
        ``numpy.random.default_rng([seed, stream, w])`` (seeded by the engine,
        ``pcg64_seeded``, in one generator per source: a window's stream is
        not kept past its window)."""
        state, inc = pcg64_seeded(_words(self.seed) + _words(self.stream) + _words(w))
        g = getattr(self, "_gen", None)
        if g is None:
            g = self._gen = np.random.Generator(np.random.PCG64(0))
        g.bit_generator.state = {
            "bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0,
            "uinteger": 0,
        }
        return g


def _words(n: int) -> list[int]:
    """A non-negative int as numpy's SeedSequence takes it: 32-bit words, lowest first."""
    n = int(n)
    if n < 0:
        raise ConfigError(f"a seed must not be negative, got {n}")
    out = [n & 0xFFFFFFFF]
    n >>= 32
    while n:
        out.append(n & 0xFFFFFFFF)
        n >>= 32
    return out


HORIZON_US = 60_000 * 1_000_000  # a process's events are generated when it starts


def check_horizon(what: str, span_us: int) -> None:
    """Refuse a source that would run past the generator's horizon."""
    if span_us > HORIZON_US:
        raise ConfigError(
            f"{what} would run for {span_us / 1e6:.0f} s of simulated time; "
            f"the generator handles at most {HORIZON_US // 1_000_000} s (give it more CPUs "
            "or a faster rate)"
        )


def stream_of(kind: str, name: str) -> int:
    """A stable RNG stream number for a source (independent of combine order)."""
    h = 0
    for ch in f"{kind}:{name}":
        h = (h * 131 + ord(ch)) % (2**31 - 1)
    return h
