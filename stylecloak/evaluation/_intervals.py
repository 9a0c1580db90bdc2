"""How far a rate counted over a few dozen verdicts can be trusted."""

from __future__ import annotations

import math

# The normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a rate ``successes / trials``.

    Chosen over the textbook normal interval because a protection rate sits near 0 or 1 often, where that one
    runs outside [0, 1] or shrinks to nothing (0 of 48 would read as "exactly 0"). It treats the verdicts as
    independent draws; a mimic's samples all come from one trained model, so the spread between two trainings
    of the mimic is larger still (docs/protection.md measured 0.04 to 0.2 between runs)."""
    if trials <= 0:
        raise ValueError(f"an interval needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within [0, {trials}], got {successes}")
    rate = successes / trials
    z2 = z * z
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials))
    # At 0 or all, the interval's end is the rate itself; say so exactly rather than to rounding error.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high
