# SPDX-License-Identifier: GPL-3.0-or-later
"""Which games and plies are sampled: Elo tiers, time control, ply curve.

Every random draw comes from a generator seeded by ``(seed, game digest)``,
so a game's samples depend only on the seed and the game itself: not on the
machine, the file it sits in, or how the input was cut into work units.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
        for name in ("min_base_time", "min_ply", "max_ply"):
            if (value := getattr(self, name)) is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 (or null: no limit), got {value}")
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
    check_seed(seed)
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.Generator(np.random.PCG64([seed & 0xFFFFFFFF, seed >> 32, *words]))


def check_seed(seed: int) -> None:
    """Refuse a seed the per-game generators cannot take: it must be in ``[0, 2**64)`` (two 32-bit words)."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")


# numpy's SeedSequence (numpy/random/bit_generator.pyx) and PCG64 (pcg64.h) constants.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT_HI, _PCG_MULT_LO = np.uint64(0x2360ED051FC65DA4), np.uint64(0x4385DF649FCCF645)
_LOW32, _32, _16 = np.uint64(0xFFFFFFFF), np.uint64(32), np.uint32(16)


def first_draws(seed: int, digests: Sequence[bytes]) -> np.ndarray:
    """``game_rng(seed, digest).random()`` for each digest, bit for bit, computed for all at once.

    Most games are read only for the Elo draw that drops them, and building a
    generator costs 23-26 µs, more than reading the game: this runs numpy's
    seeding (SeedSequence's hash of the six entropy words, then PCG64's
    set-up) and PCG64's first output on arrays, in under 1 µs per game.
    ``tests/test_games.py`` checks it against numpy itself.

    Raises:
        ValueError: if ``seed`` is not in ``[0, 2**64)``, or a digest is shorter than 16 bytes.
    """
    check_seed(seed)
    if any(len(digest) < 16 for digest in digests):
        raise ValueError("game digests must be at least 16 bytes")
    words = np.frombuffer(b"".join(digest[:16] for digest in digests), dtype="<u4").reshape(-1, 4)
    entropy = [np.full(len(words), seed & 0xFFFFFFFF, np.uint32), np.full(len(words), seed >> 32, np.uint32),
               *words.T.astype(np.uint32)]
    # SeedSequence.mix_entropy into a pool of 4 words. The hash constant
    # evolves the same way for every game, so it is a plain int here.
    pool, hashed = [], _INIT_A
    for word in entropy[:4]:
        value, hashed = _hashmix(word, hashed)
        pool.append(value)
    for source in range(4):
        for target in range(4):
            if source != target:
                value, hashed = _hashmix(pool[source], hashed)
                pool[target] = _mix(pool[target], value)
    for word in entropy[4:]:
        for target in range(4):
            value, hashed = _hashmix(word, hashed)
            pool[target] = _mix(pool[target], value)
    # SeedSequence.generate_state(4, uint64): 8 little-endian 32-bit words.
    state, hashed = [], _INIT_B
    for index in range(8):
        value = pool[index % 4] ^ np.uint32(hashed)
        hashed = (hashed * _MULT_B) & 0xFFFFFFFF
        value = value * np.uint32(hashed)
        state.append((value ^ (value >> _16)).astype(np.uint64))
    seed_hi, seed_lo, seq_hi, seq_lo = (state[2 * k] | (state[2 * k + 1] << _32) for k in range(4))
    # PCG64 set-up (pcg_setseq_128_srandom_r), then the step of the first output.
    inc = ((seq_hi << np.uint64(1)) | (seq_lo >> np.uint64(63)), (seq_lo << np.uint64(1)) | np.uint64(1))
    current = _add128(inc, (seed_hi, seed_lo))
    current = _add128(_times_multiplier(_add128(_times_multiplier(current), inc)), inc)
    high, low = current
    # XSL-RR output, then Generator.random's 53-bit double.
    mixed, rotation = high ^ low, high >> np.uint64(58)
    output = (mixed >> rotation) | (mixed << ((np.uint64(64) - rotation) & np.uint64(63)))
    return (output >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _hashmix(value: np.ndarray, hashed: int) -> tuple[np.ndarray, int]:
    value = value ^ np.uint32(hashed)
    hashed = (hashed * _MULT_A) & 0xFFFFFFFF
    value = value * np.uint32(hashed)
    return value ^ (value >> _16), hashed


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
    return result ^ (result >> _16)


def _add128(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``a + b`` modulo 2**128, each as (high, low) 64-bit words (numpy's uint64 arithmetic wraps)."""
    low = a[1] + b[1]
    return a[0] + b[0] + (low < a[1]).astype(np.uint64), low


def _times_multiplier(a: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``a`` times PCG64's multiplier, modulo 2**128."""
    high, low = a
    # The high word of low * multiplier-low, from 32-bit halves (each product fits in 64 bits).
    a0, a1, b0, b1 = low & _LOW32, low >> _32, _PCG_MULT_LO & _LOW32, _PCG_MULT_LO >> _32
    middle = ((a0 * b0) >> _32) + ((a0 * b1) & _LOW32) + ((a1 * b0) & _LOW32)
    carry = a1 * b1 + ((a0 * b1) >> _32) + ((a1 * b0) >> _32) + (middle >> _32)
    return carry + low * _PCG_MULT_HI + high * _PCG_MULT_LO, low * _PCG_MULT_LO
