r"""Instance strategies for claim authors: every instance is built *by construction*, never filtered.

An instance is a JSON-able `dict`, so a counterexample can be saved and replayed exactly;
`build_problem(spec)`, `build_decoupled(spec)` and `build_init(p, init)` turn the drawn
dicts into NumPy objects inside a claim's check. Hypothesis shrinks every strategy here
towards the simplest instance: the fewest modes, the smallest dimensions, the lower end of
every range, seed 0.

```python
from hypothesis import strategies as st
from cdyn.claims.strategies import problem_specs, inits, build_problem, build_init

@st.composite
def my_instances(draw):
    return {"problem": draw(problem_specs(noise=(0.05, 0.3))), "init": draw(inits())}

def check(instance):
    p = build_problem(instance["problem"])
    W_A0, W_B0 = build_init(p, instance["init"])
    ...
```

This module registers nothing (`claims.load_all()` imports it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from cdyn import numerics

from . import _strategies as _s
from ._common import build_decoupled as _build_decoupled

__all__ = [
    "build_decoupled", "build_init", "build_problem", "decoupled_spec", "floats", "inits", "problem_specs", "seeds",
    "spaced_desc", "spread",
]


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite floats in $[lo, hi]$ without subnormals (so JSON round-trips them exactly); shrinks towards `lo`."""
    return _s.floats(lo, hi)


def seeds() -> st.SearchStrategy[int]:
    """Integer seeds in $[0, 2^{16}]$ for `numpy.random.default_rng`; shrinks towards 0."""
    return _s.seeds()


def spaced_desc(n: int, top: tuple[float, float], ratio: tuple[float, float]) -> st.SearchStrategy[list[float]]:
    r"""`n` strictly decreasing values $v_1 > \dots > v_n$: $v_1 \in$ `top`, $v_{i+1} = v_i/\rho_i$, $\rho_i \in$ `ratio`.

    With `ratio[0] > 1` the gaps are bounded below, so "distinct and ordered" holds by
    construction. Shrinks towards $v_1 = $ `top[0]` and the smallest ratios (the closest spacing).
    """
    return _s.spaced_desc(n, top, ratio)


def spread(n: int, cond: float, low: float = 1.0) -> st.SearchStrategy[list[float]]:
    r"""`n` values decreasing from `low·cond` to `low` exactly, log-spaced by drawn weights in $[0.2, 1]$.

    Use it to fix a condition number (the ratio of the ends) and draw the rest. Shrinks
    towards equal weights of 0.2, i.e. evenly log-spaced values.
    """
    return _s.spread(n, cond, low)


def decoupled_spec(*, r: tuple[int, int] = (2, 4), noise: tuple[float, float] = (0.0, 0.3),
                   lam: tuple[float, float] = (0.5, 2.0), extra_d: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    r"""A decoupled instance of THEORY §5 (shared right singular vectors): build it with `build_decoupled`.

    Draws $r$ modes with strengths $a$ (ratios in $[1.25, 2]$) and $b$ (ratios in $[1, 1.6]$)
    decreasing together, so $g = ab$ is strictly ordered; isotropic noise as a fraction
    of the weakest mode; $0..$`extra_d` extra dimensions per view; $\lambda$; a seed for
    the rotations. Keys: `a, b, sigma_A, sigma_B, extra_d_A, extra_d_B, lam, seed`.
    Shrinks towards $r$ = `r[0]` modes, the closest spacing, the least noise, seed 0.
    """
    return _s.decoupled_spec(r=r, noise=noise, lam=lam, extra_d=extra_d)


def build_decoupled(spec: dict[str, Any], mu: float = 0.0) -> numerics.DecoupledInstance:
    """The `numerics.DecoupledInstance` of a `decoupled_spec` dict (deterministic in `spec["seed"]`)."""
    return _build_decoupled(spec, mu)


@st.composite
def problem_specs(draw: Any, *, r: tuple[int, int] = (1, 3), extra_d: tuple[int, int] = (0, 3),
                  m: tuple[int, int] = (1, 3), top: tuple[float, float] = (0.5, 2.0),
                  ratio: tuple[float, float] = (1.05, 2.0), noise: tuple[float, float] = (0.0, 0.3),
                  lam: tuple[float, float] = (0.5, 2.0), mu: tuple[float, float] = (0.0, 0.0),
                  shared_right: bool | None = False,
                  params: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    r"""A general instance of THEORY §1 as a JSON-able spec; `build_problem(spec)` makes the `Problem`.

    Draws the signal dimension $r$, $d_A = r + e_A$, $d_B = r + e_B$ ($e \in$ `extra_d`),
    $m$, singular values of $A$ and $B$ (each `spaced_desc(r, top, ratio)`: distinct and
    decreasing), isotropic noise levels $\sigma_A, \sigma_B \in$ `noise` ($A_\xi = \sigma_A I$,
    so `noise[0] > 0` makes $\Sigma_A, \Sigma_B$ positive definite), $\lambda$, $\mu$, the seed
    of the Haar-random bases, and one value per named symbolic weight in `params`
    (e.g. `params={"nu": (0.1, 2.0)}`). `shared_right=None` draws the geometry (decoupled
    or not); a bool fixes it. Shrinks towards $r$ = `r[0]`, $d = r$, $m$ = `m[0]`, the lower end of
    every range and seed 0.
    """
    n = draw(st.integers(*r))
    spec: dict[str, Any] = {
        "spectrum_A": draw(spaced_desc(n, top, ratio)), "spectrum_B": draw(spaced_desc(n, top, ratio)),
        "d_A": n + draw(st.integers(*extra_d)), "d_B": n + draw(st.integers(*extra_d)), "m": draw(st.integers(*m)),
        "noise_A": draw(floats(*noise)), "noise_B": draw(floats(*noise)),
        "lam": draw(floats(*lam)), "mu": draw(floats(*mu)),
        "shared_right": draw(st.booleans()) if shared_right is None else bool(shared_right),
        "seed": draw(seeds()),
    }
    spec["params"] = {k: draw(floats(*bounds)) for k, bounds in sorted((params or {}).items())}
    return spec


def build_problem(spec: dict[str, Any]) -> numerics.Problem:
    """The `numerics.Problem` of a `problem_specs` dict (the same spec always gives the same matrices).

    The keys are those of `numerics.random_problem` plus `params` (values of symbolic
    weights of user terms, e.g. `{"nu": 0.5}`); `d_A`, `d_B` default to $r$, the rest to
    `random_problem`'s defaults.
    """
    n = len(spec["spectrum_A"])
    p = numerics.random_problem(
        spec["spectrum_A"], spec["spectrum_B"], d_A=spec.get("d_A", n), d_B=spec.get("d_B", n), m=spec.get("m", n),
        noise_A=spec.get("noise_A", 0.0), noise_B=spec.get("noise_B", 0.0), lam=spec.get("lam", 1.0),
        mu=spec.get("mu", 0.0), shared_right=spec.get("shared_right", False), seed=spec.get("seed", 0))
    return p.replace(params=dict(spec.get("params") or {})) if spec.get("params") else p


def inits(scale: tuple[float, float] = (1e-3, 1e-1)) -> st.SearchStrategy[dict[str, Any]]:
    r"""A random initialisation as `{"scale": s, "seed": k}`: Gaussian $W_A, W_B$ with entries of std $s$.

    `build_init(p, init)` draws the matrices. Shrinks towards $s$ = `scale[0]` and seed 0.
    """
    return st.fixed_dictionaries({"scale": floats(*scale), "seed": seeds()})


def build_init(p: numerics.Problem, init: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """$(W_A(0), W_B(0))$ of an `inits` dict: `numerics.random_init(p, scale, seed)`."""
    return numerics.random_init(p, float(init["scale"]), int(init["seed"]))


# Declared parameter boxes (`Space`, `Param`: instances built from a point of a box, which the
# engine's second stage searches with a local optimiser), re-exported when the engine has them.
try:
    from ._space import Param, Space
except ModuleNotFoundError as _err:  # pragma: no cover - only before claims/_space.py exists
    if _err.name != "cdyn.claims._space":
        raise
else:
    __all__ += ["Param", "Space"]
