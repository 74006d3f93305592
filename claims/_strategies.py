"""Hypothesis strategies that build instances *by construction* (never by filtering).

An instance is a JSON-able dict. Spectra are drawn as a top value and a list of gaps
(ratios ≥ 1 + min gap), so they come out sorted and spaced; a condition number is drawn
as a target and spread over the spectrum. Everything shrinks towards the simplest case:
two modes, the smallest gaps, seed 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

#: Floats the strategies draw: finite, no subnormals, so JSON round-trips them exactly.
_F = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, **_F)


@st.composite
def spaced_desc(draw: Any, n: int, top: tuple[float, float], ratio: tuple[float, float]) -> list[float]:
    """n values, strictly decreasing: v_1 = top, v_{i+1} = v_i / ratio_i, each ratio in `ratio` (> 1)."""
    v = [draw(floats(*top))]
    for _ in range(n - 1):
        v.append(v[-1] / draw(floats(*ratio)))
    return v


@st.composite
def spread(draw: Any, n: int, cond: float, low: float = 1.0) -> list[float]:
    """n values decreasing from low·cond to low, log-spaced by drawn positive weights (exact ends)."""
    if n == 1:
        return [low]
    w = np.array([draw(floats(0.2, 1.0)) for _ in range(n - 1)])
    logs = np.concatenate([[0.0], np.cumsum(w) / w.sum()]) * np.log(cond)
    v = [float(low * np.exp(x)) for x in logs[::-1]]
    v[0], v[-1] = float(low * cond), float(low)
    return v


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**16)


@st.composite
def decoupled_spec(draw: Any, *, r: tuple[int, int] = (2, 4), noise: tuple[float, float] = (0.0, 0.3),
                   lam: tuple[float, float] = (0.5, 2.0), extra_d: int = 2) -> dict[str, Any]:
    """A decoupled instance: mode strengths a, b decreasing together (so g = ab and ρ are ordered)."""
    n = draw(st.integers(*r))
    a = draw(spaced_desc(n, (0.5, 2.0), (1.25, 2.0)))
    b = draw(spaced_desc(n, (0.5, 2.0), (1.0, 1.6)))
    # Noise relative to the weakest mode, so "small noise" means the same at every scale.
    return {"a": a, "b": b,
            "sigma_A": draw(floats(*noise)) * a[-1], "sigma_B": draw(floats(*noise)) * b[-1],
            "extra_d_A": draw(st.integers(0, extra_d)), "extra_d_B": draw(st.integers(0, extra_d)),
            "lam": draw(floats(*lam)), "seed": draw(seeds())}
