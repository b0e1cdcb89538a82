# SPDX-License-Identifier: GPL-3.0-or-later
"""Which games and plies are sampled: Elo tiers, time control, ply curve.

Every random draw comes from a generator seeded by ``(seed, game digest)``,
so a game's samples depend only on the seed and the game itself: not on the
machine, the file it sits in, or how the input was cut into work units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np

SamplingMode = Literal["default", "all"]
SAMPLING_MODES: tuple[str, ...] = get_args(SamplingMode)

_TIME_CONTROL = re.compile(r"^\s*(\d+)(?:\+\d+)?\s*$")


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters.

    Args:
        elo_tiers: ``(min_rating, keep_probability)`` pairs. A game is matched
            on the lower of its two ratings (unknown counts as 0) to the
            strictest tier it reaches, and kept with that probability.
        min_base_time: games whose base time (seconds) is below this are
            skipped; missing or unparseable time controls are kept. None
            disables the filter.
        ply_full: plies from this one on reach the full ``ply_keep``; ply
            ``p`` is kept with probability ``min((p / ply_full) ** 2, 1) * ply_keep``.
        ply_keep: the ply curve's top keep probability.
        min_ply: plies below this are never sampled (None: no bound).
        max_ply: plies above this are never sampled (None: no bound).
        keep_all: keep every position of every standard game, ignoring all
            the other parameters (the ``"all"`` mode).
    """

    elo_tiers: tuple[tuple[int, float], ...] = ((2400, 1.0), (2000, 0.4), (0, 0.001))
    min_base_time: int | None = 300
    ply_full: int = 30
    ply_keep: float = 0.33
    min_ply: int | None = None
    max_ply: int | None = None
    keep_all: bool = field(default=False)

    def __post_init__(self) -> None:
        tiers = tuple(sorted(((int(m), float(p)) for m, p in self.elo_tiers), reverse=True))
        object.__setattr__(self, "elo_tiers", tiers)
        if not tiers or tiers[-1][0] > 0:
            raise ValueError(f"elo_tiers must include a tier with min rating 0, got {self.elo_tiers}")
        for minimum, keep in tiers:
            if not 0.0 <= keep <= 1.0:
                raise ValueError(f"elo tier keep probability must be in [0, 1], got {keep} for min {minimum}")
        if not 0.0 <= self.ply_keep <= 1.0:
            raise ValueError(f"ply_keep must be in [0, 1], got {self.ply_keep}")
        if self.ply_full < 0:
            raise ValueError(f"ply_full must be >= 0, got {self.ply_full}")
        if self.min_ply is not None and self.max_ply is not None and self.min_ply > self.max_ply:
            raise ValueError(f"min_ply {self.min_ply} is greater than max_ply {self.max_ply}")

    @classmethod
    def from_mode(cls, mode: str, **overrides: object) -> Sampling:
        """The parameters of a named mode, with individual overrides.

        Raises:
            ValueError: on an unknown mode.
        """
        if mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; expected one of {', '.join(SAMPLING_MODES)}")
        base = cls(keep_all=mode == "all")
        return replace(base, **overrides) if overrides else base

    def game_keep_probability(self, white_elo: int | None, black_elo: int | None) -> float:
        """Keep probability of a game from its ratings (unknown = 0)."""
        rating = min(white_elo or 0, black_elo or 0)
        for minimum, keep in self.elo_tiers:
            if rating >= minimum:
                return keep
        return self.elo_tiers[-1][1]

    def time_control_ok(self, time_control: str | None) -> bool:
        """False only for a parseable base time below ``min_base_time``."""
        if self.min_base_time is None or time_control is None:
            return True
        match = _TIME_CONTROL.match(time_control)
        return match is None or int(match.group(1)) >= self.min_base_time

    def ply_probabilities(self, n_plies: int) -> np.ndarray:
        """Keep probability of plies ``1..n_plies``."""
        plies = np.arange(1, n_plies + 1, dtype=np.float64)
        scale = max(self.ply_full, 1)
        probabilities = np.minimum((plies / scale) ** 2, 1.0) * self.ply_keep
        if self.min_ply is not None:
            probabilities[plies < self.min_ply] = 0.0
        if self.max_ply is not None:
            probabilities[plies > self.max_ply] = 0.0
        return probabilities


def parse_rating(value: str | None) -> int | None:
    """A rating tag's value as an int; None for missing, empty, ``?`` or junk."""
    if value is None:
        return None
    value = value.strip()
    # isascii: str.isdigit() also accepts digits such as "²" that int() rejects.
    return int(value) if value.isascii() and value.isdigit() else None


def game_rng(seed: int, digest: bytes) -> np.random.Generator:
    """The generator of one game's draws, from the seed and the game's digest.

    Raises:
        ValueError: if ``seed`` is not in ``[0, 2**64)``.
    """
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.Generator(np.random.PCG64([seed & 0xFFFFFFFF, seed >> 32, *words]))
