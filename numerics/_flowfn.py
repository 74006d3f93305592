r"""The theory's flow compiled for one problem: $(W_A, W_B) \mapsto (\dot W_A, \dot W_B)$, $L$."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import theory

from ._compile import CompiledExpr, compile_exprs
from ._problem import Problem


@lru_cache(maxsize=128)
def _compiled(terms: tuple[str, ...], dims_key: tuple) -> tuple[CompiledExpr, CompiledExpr]:
    flow = theory.gradient_flow(terms)
    dims = dict(dims_key)
    rhs = compile_exprs({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, dims, "rhs")
    loss = compile_exprs({"loss": flow.loss}, dims, "loss")
    return rhs, loss


@dataclass(frozen=True, eq=False)
class FlowFunction:
    """Compiled right-hand side and loss of `theory.gradient_flow(terms)` on a problem."""

    problem: Problem
    terms: tuple[str, ...]
    rhs_code: CompiledExpr
    loss_code: CompiledExpr

    def _env(self, code: CompiledExpr, W_A: np.ndarray, W_B: np.ndarray) -> dict:
        vals = self.problem.values()
        vals["W_A"], vals["W_B"] = W_A, W_B
        missing = [k for k in code.inputs if k not in vals]
        if missing:
            raise ValueError(f"params: the loss needs a value for {missing[0]!r} (pass Problem(params=...))")
        return {k: vals[k] for k in code.inputs}

    def __call__(self, W_A: np.ndarray, W_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """$(\\dot W_A, \\dot W_B) = -\\nabla L$."""
        dA, dB = self.rhs_code(**self._env(self.rhs_code, W_A, W_B))
        return np.broadcast_to(dA, W_A.shape), np.broadcast_to(dB, W_B.shape)

    def loss(self, W_A: np.ndarray, W_B: np.ndarray) -> float:
        return float(self.loss_code(**self._env(self.loss_code, W_A, W_B))[0])

    def grad_norm(self, W_A: np.ndarray, W_B: np.ndarray) -> float:
        dA, dB = self(W_A, W_B)
        return float(np.sqrt(np.sum(dA * dA) + np.sum(dB * dB)))

    def vector_field(self):
        """The flow on the flat state $y = (\\mathrm{vec}\\,W_A, \\mathrm{vec}\\,W_B)$."""
        m, dA_, dB_ = self.problem.m, self.problem.d_A, self.problem.d_B
        n = m * dA_

        def f(_t: float, y: np.ndarray) -> np.ndarray:
            dA, dB = self(y[:n].reshape(m, dA_), y[n:].reshape(m, dB_))
            return np.concatenate([dA.ravel(), dB.ravel()])

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


def flow_function(problem: Problem, terms: object = ("pos", "neg")) -> FlowFunction:
    """Compile the flow of `terms` for `problem` (cached per terms and shapes)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    names = normalize_terms(terms)
    rhs, loss = _compiled(names, tuple(sorted(problem.dims.items(), key=lambda kv: kv[0].name)))
    return FlowFunction(problem, names, rhs, loss)
