r"""The theory's flow compiled for one problem: $(W_A, W_B) \mapsto (\dot W_A, \dot W_B)$, $L$.

Two symbolic forms of the same flow can be compiled:

* `"full"`: `theory.gradient_flow`, reading the moments $\Sigma_A, \Sigma_B, C$;
* `"structured"`: `theory.structured_flow`, reading the thin factors $A, B, A_\xi, B_\xi,
  \Sigma_z$ (or $\sigma_A, \sigma_B$ for isotropic noise) and never a $d\times d$ matrix.

The data are bound once (`CompiledExpr.bind`), so a call does only the per-state work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from cdyn import theory

from ._compile import CompiledExpr, compile_exprs
from ._problem import Problem
from ._structured import noise_kinds, values_for

PATHS = ("full", "structured")
STATE = ("W_A", "W_B")


@lru_cache(maxsize=128)
def _compiled(terms: tuple, dims_key: tuple, path: str = "full",
              noise: tuple[str, str] = ("thin", "thin")) -> tuple[CompiledExpr, CompiledExpr]:
    names = tuple(t.name for t in terms)
    if path == "structured":
        flow = theory.structured_flow(names, *noise)
    else:
        flow = theory.gradient_flow(names)
    dims = dict(dims_key)
    sym = theory.symbols.SYMMETRIC
    dW_A, dW_B, L = flow.dW_A, flow.dW_B, flow.loss
    if path != "structured":  # (the structured form is already expanded into thin chains)
        dW_A, dW_B, L = theory.normalize(dW_A), theory.normalize(dW_B), theory.normalize(L)
    rhs = compile_exprs({"dW_A": dW_A, "dW_B": dW_B}, dims, "rhs", varying=STATE, symmetric=sym)
    loss = compile_exprs({"loss": L}, dims, "loss", varying=STATE, symmetric=sym)
    return rhs, loss


@dataclass(frozen=True, eq=False)
class FlowFunction:
    """Compiled right-hand side and loss of the flow of `terms` on a problem."""

    problem: Problem
    terms: tuple[str, ...]
    rhs_code: CompiledExpr
    loss_code: CompiledExpr
    path: str = "full"
    _bound: dict = field(init=False, repr=False, default_factory=dict)

    def _fn(self, which: str) -> Callable[..., tuple]:
        # Bound on first use: binding reads the data (for "full", Σ_A is d×d), which a
        # caller that only compares costs of forms must not pay for.
        fn = self._bound.get(which)
        if fn is None:
            code = self.rhs_code if which == "rhs" else self.loss_code
            fn = self._bound[which] = code.bind(**values_for(self.problem, code.constants))
        return fn

    @property
    def _rhs(self) -> Callable[..., tuple]:
        return self._fn("rhs")

    @property
    def _loss(self) -> Callable[..., tuple]:
        return self._fn("loss")

    def __call__(self, W_A: np.ndarray, W_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """$(\\dot W_A, \\dot W_B) = -\\nabla L$."""
        dA, dB = self._rhs(W_A, W_B)
        return np.broadcast_to(dA, W_A.shape), np.broadcast_to(dB, W_B.shape)

    def loss(self, W_A: np.ndarray, W_B: np.ndarray) -> float:
        return float(self._loss(W_A, W_B)[0])

    def grad_norm(self, W_A: np.ndarray, W_B: np.ndarray) -> float:
        dA, dB = self(W_A, W_B)
        return float(np.sqrt(np.sum(dA * dA) + np.sum(dB * dB)))

    @property
    def flops(self) -> float:
        """Estimated floating-point operations of one right-hand side."""
        return self.rhs_code.flops

    def vector_field(self) -> Callable[[float, np.ndarray], np.ndarray]:
        """The flow on the flat state $y = (\\mathrm{vec}\\,W_A, \\mathrm{vec}\\,W_B)$."""
        m, dA_, dB_ = self.problem.m, self.problem.d_A, self.problem.d_B
        n = m * dA_
        rhs = self._rhs

        def f(_t: float, y: np.ndarray) -> np.ndarray:
            dA, dB = rhs(y[:n].reshape(m, dA_), y[n:].reshape(m, dB_))
            out = np.empty(y.shape)
            out[:n] = dA.ravel()  # a broadcast constant (e.g. a zero flow) ravels to full size too
            out[n:] = dB.ravel()
            return out

        return f


def normalize_terms(terms: object) -> tuple[str, ...]:
    """Accept a tuple/list of names or a comma-separated string; check each is registered."""
    if isinstance(terms, str):
        terms = [t.strip() for t in terms.split(",") if t.strip()]
    if not isinstance(terms, (tuple, list)) or not terms:
        raise ValueError("terms: expected a non-empty list of loss-term names")
    for t in terms:
        theory.get_term(t)  # raises a ValueError naming the unknown term
    return tuple(terms)


def flow_function(problem: Problem, terms: object = ("pos", "neg"), path: str = "full") -> FlowFunction:
    """Compile the flow of `terms` for `problem` (cached per terms, shapes and form)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    if path not in PATHS:
        raise ValueError(f"path: unknown form {path!r}; choose from {', '.join(PATHS)}")
    names = normalize_terms(terms)
    objs = tuple(theory.get_term(n) for n in names)  # a re-registered term compiles afresh
    dims_key = tuple(sorted(problem.dims.items(), key=lambda kv: kv[0].name))
    noise = noise_kinds(problem)[0] if path == "structured" else ("thin", "thin")
    rhs, loss = _compiled(objs, dims_key, path, noise)
    return FlowFunction(problem, names, rhs, loss, path)
