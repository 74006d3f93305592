r"""Which factored form a problem admits, and the values its compiled code reads.

`theory.structured_flow` is the flow with $\Sigma_A = A\Sigma_z A^\top + A_\xi A_\xi^\top$ and
$C = A\Sigma_z B^\top$ substituted; this module only *classifies* each view's noise so the
right symbolic form is picked, and supplies the arrays without ever forming a
$d\times d$ moment:

* `"none"`: $A_\xi$ is absent or zero;
* `"isotropic"`: $A_\xi = \sigma_A I$ (square, a multiple of the identity);
* `"thin"`: anything else ($A_\xi$ as given; cheap when $k_A \ll d_A$).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._problem import Problem


def noise_kind(A_xi: np.ndarray) -> tuple[str, float]:
    """`(kind, sigma)` of one view's noise factor."""
    d, k = A_xi.shape
    if k == 0 or not np.any(A_xi):
        return "none", 0.0
    if d == k:
        s = float(A_xi[0, 0])
        diag = np.diagonal(A_xi)
        # A constant non-zero diagonal and no other non-zero entry (no d×d temporary).
        if s > 0 and np.all(diag == s) and np.count_nonzero(A_xi) == d:
            return "isotropic", s
    return "thin", 0.0


def noise_kinds(p: Problem) -> tuple[tuple[str, str], tuple[float, float]]:
    """Noise kinds and levels of both views, computed once per problem."""
    cached = p.__dict__.get("_cdyn_noise")
    if cached is None:
        # Problem records σ for isotropic noise (given as a scalar or as σI) when it is built.
        levels = p.__dict__.get("_cdyn_levels", (None, None))
        (ka, sa), (kb, sb) = (("isotropic", s) if s else noise_kind(X) for s, X in zip(levels, (p.A_xi, p.B_xi)))
        cached = ((ka, kb), (sa, sb))
        p.__dict__["_cdyn_noise"] = cached  # Problem is frozen; this is a pure cache of its data
    return cached


def value_getters(p: Problem) -> dict[str, Callable[[], object]]:
    """Lazy getters for every input a compiled expression may read.

    Lazy, because `Problem.Sigma_A` is $d_A\\times d_A$: a structured or reduced path must
    be able to run without it ever being formed.
    """
    (_, _), (sa, sb) = noise_kinds(p)
    get: dict[str, Callable[[], object]] = {
        "A": lambda: p.A, "B": lambda: p.B, "Sigma_z": lambda: p.Sigma_z,
        "A_xi": lambda: p.A_xi if p.A_xi.shape[1] else np.zeros((p.d_A, 1)),
        "B_xi": lambda: p.B_xi if p.B_xi.shape[1] else np.zeros((p.d_B, 1)),
        "Sigma_A": lambda: p.Sigma_A, "Sigma_B": lambda: p.Sigma_B, "C": lambda: p.C,
        "lam": lambda: p.lam, "mu": lambda: p.mu, "sigma_A": lambda: sa, "sigma_B": lambda: sb,
    }
    for k, v in p.params.items():
        get[k] = (lambda v=v: v)
    return get


def values_for(p: Problem, names: tuple[str, ...]) -> dict[str, object]:
    """`{name: value}` for the given input names; a clear error for a missing parameter."""
    get = value_getters(p)
    missing = [k for k in names if k not in get]
    if missing:
        raise ValueError(f"params: the loss needs a value for {missing[0]!r} (pass Problem(params=...))")
    return {k: get[k]() for k in names}
