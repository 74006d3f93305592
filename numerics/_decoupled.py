r"""Decoupled instances (THEORY §5) and the per-mode ODEs that `theory` derives for them.

$A = U_A\,\mathrm{diag}(a)V^\top$, $B = U_B\,\mathrm{diag}(b)V^\top$ with Haar-random
$U_A$ ($d_A\times r$), $U_B$, $V$, isotropic noise $\sigma_A I$, $\sigma_B I$, and the
aligned initialisation $W_A = P\,\mathrm{diag}(w_A)U_A^\top$, $W_B = P\,\mathrm{diag}(w_B)U_B^\top$
($m = r$, $P$ orthogonal). The matrix flow then moves only $(w_A, w_B)$, and
`DecoupledInstance.modes` reads them back from any $(W_A, W_B)$.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from cdyn import theory

from ._instances import random_orthonormal
from ._problem import Problem
from ._validate import as_int, as_real


@dataclass(frozen=True, eq=False)
class DecoupledInstance:
    """A decoupled problem together with the bases that diagonalise it."""

    problem: Problem
    a: np.ndarray
    b: np.ndarray
    sigma_A: float
    sigma_B: float
    U_A: np.ndarray
    U_B: np.ndarray
    V: np.ndarray
    P: np.ndarray

    @property
    def r(self) -> int:
        return self.a.size

    @property
    def g(self) -> np.ndarray:
        """$g_i = a_i b_i$, the singular values of $C$ mode by mode (the derived `mode_gain`)."""
        return _mode_params()[0](self.a, self.b, self.sigma_A, self.sigma_B) * np.ones(self.r)

    @property
    def alpha(self) -> np.ndarray:
        r"""$\alpha_i = \alpha_{A,i}\alpha_{B,i} = (a_i^2 + \sigma_A^2)(b_i^2 + \sigma_B^2)$ (the derived `mode_alpha`)."""
        return _mode_params()[1](self.a, self.b, self.sigma_A, self.sigma_B) * np.ones(self.r)

    @property
    def rho(self) -> np.ndarray:
        """Each mode's canonical correlation, from the derived per-mode expression."""
        return mode_rho_fn()(self.a, self.b, self.sigma_A, self.sigma_B)

    def init(self, w_A: Sequence[float], w_B: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """The aligned weights $P\\,\\mathrm{diag}(w)\\,U^\\top$."""
        wa = np.asarray(w_A, dtype=float).reshape(self.r)
        wb = np.asarray(w_B, dtype=float).reshape(self.r)
        return self.P @ np.diag(wa) @ self.U_A.T, self.P @ np.diag(wb) @ self.U_B.T

    def modes(self, W_A: np.ndarray, W_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """$(w_A, w_B) = (\\mathrm{diag}\\,P^\\top W_A U_A, \\mathrm{diag}\\,P^\\top W_B U_B)$."""
        return np.diag(self.P.T @ W_A @ self.U_A).copy(), np.diag(self.P.T @ W_B @ self.U_B).copy()

    def off_mode(self, W_A: np.ndarray, W_B: np.ndarray) -> float:
        """Size of everything outside the aligned diagonal form (0 on an aligned state)."""
        wa, wb = self.modes(W_A, W_B)
        ra, rb = self.init(wa, wb)
        return float(np.sqrt(np.sum((W_A - ra) ** 2) + np.sum((W_B - rb) ** 2)))


def decoupled_instance(
    a: Sequence[float],
    b: Sequence[float],
    *,
    sigma_A: float = 0.0,
    sigma_B: float = 0.0,
    extra_d_A: int = 0,
    extra_d_B: int = 0,
    lam: float = 1.0,
    mu: float = 0.0,
    seed: int = 0,
) -> DecoupledInstance:
    """A seeded decoupled instance with $d_A = r +$ `extra_d_A`, $d_B = r +$ `extra_d_B`, $m = r$."""
    a_ = np.array([as_real(f"a[{i}]", v, low=0.0, strict=True) for i, v in enumerate(a)])
    b_ = np.array([as_real(f"b[{i}]", v, low=0.0, strict=True) for i, v in enumerate(b)])
    if a_.size == 0 or a_.shape != b_.shape:
        raise ValueError(f"b: expected {a_.size} mode strengths (as many as a), got {b_.size}")
    sA, sB = as_real("sigma_A", sigma_A, low=0.0), as_real("sigma_B", sigma_B, low=0.0)
    r = a_.size
    d_A = r + as_int("extra_d_A", extra_d_A, low=0)
    d_B = r + as_int("extra_d_B", extra_d_B, low=0)
    rng = np.random.default_rng(as_int("seed", seed, low=0))
    U_A, U_B = random_orthonormal(rng, d_A, r), random_orthonormal(rng, d_B, r)
    V, P = random_orthonormal(rng, r, r), random_orthonormal(rng, r, r)
    A, B = U_A @ np.diag(a_) @ V.T, U_B @ np.diag(b_) @ V.T
    p = Problem(A=A, B=B, A_xi=sA * np.eye(d_A) if sA > 0 else None, B_xi=sB * np.eye(d_B) if sB > 0 else None,
                m=r, lam=lam, mu=mu)
    return DecoupledInstance(p, a_, b_, sA, sB, U_A, U_B, V, P)


_MODE_ARGS = (theory.decoupled.w_A, theory.decoupled.w_B, theory.decoupled.a, theory.decoupled.b,
              theory.decoupled.sigma_A, theory.decoupled.sigma_B, theory.symbols.lam, theory.symbols.mu)


@lru_cache(maxsize=8)
def mode_rhs(terms: tuple[str, ...] = ("pos", "neg")) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The derived per-mode ODE, vectorised: `f(w_A, w_B, a, b, sigma_A, sigma_B, lam, mu)`."""
    fl = theory.decoupled.decoupled_flow(tuple(terms))
    fA = sp.lambdify(_MODE_ARGS, fl.dw_A, "numpy")
    fB = sp.lambdify(_MODE_ARGS, fl.dw_B, "numpy")

    def f(*args: object) -> tuple[np.ndarray, np.ndarray]:
        shape = np.broadcast(*args).shape
        return np.broadcast_to(fA(*args), shape) * 1.0, np.broadcast_to(fB(*args), shape) * 1.0

    return f


@lru_cache(maxsize=1)
def _mode_params() -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    d = theory.decoupled
    aA, aB = d.mode_alpha()
    args = (d.a, d.b, d.sigma_A, d.sigma_B)
    return sp.lambdify(args, d.mode_gain(), "numpy"), sp.lambdify(args, aA * aB, "numpy")


@lru_cache(maxsize=1)
def mode_rho_fn() -> Callable[..., np.ndarray]:
    d = theory.decoupled
    return sp.lambdify((d.a, d.b, d.sigma_A, d.sigma_B), d.mode_rho(), "numpy")


def mode_derivatives(inst: DecoupledInstance, w_A: np.ndarray, w_B: np.ndarray,
                     terms: tuple[str, ...] = ("pos", "neg")) -> tuple[np.ndarray, np.ndarray]:
    """$(\\dot w_A, \\dot w_B)$ of every mode from the derived per-mode ODE."""
    p = inst.problem
    return mode_rhs(tuple(terms))(w_A, w_B, inst.a, inst.b, inst.sigma_A, inst.sigma_B, p.lam, p.mu)


@lru_cache(maxsize=1)
def _mode_q() -> Callable[..., np.ndarray]:
    return sp.lambdify(_MODE_ARGS[:4], theory.decoupled.decoupled_flow(("pos",)).q, "numpy")


def mode_q(inst: DecoupledInstance, w_A: np.ndarray, w_B: np.ndarray) -> np.ndarray:
    """Each mode's singular value of $M$ (signed), from the derived $q = g\\,w_A w_B$."""
    return np.asarray(_mode_q()(w_A, w_B, inst.a, inst.b), dtype=float)
