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


@lru_cache(maxsize=64)
def _symbolic(terms: tuple, path: str, noise: tuple[str, str]) -> tuple:
    r"""$(\dot W_A, \dot W_B, L)$ of the form, normalised: the shape-independent half of a compile."""
    names = tuple(t.name for t in terms)
    if path == "structured":
        flow = theory.structured_flow(names, *noise)
    else:
        flow = theory.gradient_flow(names)
    dW_A, dW_B, L = flow.dW_A, flow.dW_B, flow.loss
    if path != "structured":  # (the structured form is already expanded into thin chains)
        dW_A, dW_B, L = theory.normalize(dW_A), theory.normalize(dW_B), theory.normalize(L)
    return dW_A, dW_B, L


# Keyed by every dimension: the chain order, hence the generated code, depends on the shapes.
# A claims run meets about a hundred distinct shapes; each compile costs ~30 ms.
@lru_cache(maxsize=512)
def _compiled_rhs(terms: tuple, dims_key: tuple, path: str = "full",
                  noise: tuple[str, str] = ("thin", "thin")) -> CompiledExpr:
    dW_A, dW_B, _ = _symbolic(terms, path, noise)
    return compile_exprs({"dW_A": dW_A, "dW_B": dW_B}, dict(dims_key), "rhs", varying=STATE,
                         symmetric=theory.symbols.SYMMETRIC)


@lru_cache(maxsize=512)
def _compiled_loss(terms: tuple, dims_key: tuple, path: str = "full",
                   noise: tuple[str, str] = ("thin", "thin")) -> CompiledExpr:
    L = _symbolic(terms, path, noise)[2]
    return compile_exprs({"loss": L}, dict(dims_key), "loss", varying=STATE, symmetric=theory.symbols.SYMMETRIC)


@dataclass(frozen=True, eq=False)
class FlowFunction:
    """Compiled right-hand side and loss of the flow of `terms` on a problem."""

    problem: Problem
    terms: tuple[str, ...]
    rhs_code: CompiledExpr
    #: `_compiled_loss`'s key: the loss is compiled on first use (integration never reads it)
    loss_key: tuple = field(repr=False)
    path: str = "full"
    #: bound setups by "rhs"/"loss", shared by the flow functions of one problem (`flow_function`)
    _bound: dict = field(repr=False, default_factory=dict)

    @property
    def loss_code(self) -> CompiledExpr:
        return _compiled_loss(*self.loss_key)

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

        shape_A, shape_B = (m, dA_), (m, dB_)

        def f(_t: float, y: np.ndarray) -> np.ndarray:
            dA, dB = rhs(y[:n].reshape(shape_A), y[n:].reshape(shape_B))
            if dA.shape == shape_A and dB.shape == shape_B:  # one call instead of three
                return np.concatenate((dA.ravel(), dB.ravel()))
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
    # Per problem (`Problem.__getstate__` leaves it out of pickles): the compile key and the bound
    # setups, so a metric called frame by frame binds the data once. Only closures over the data are
    # kept, never the problem itself (no reference cycle keeps a large problem alive).
    per_problem = problem.__dict__.setdefault("_cdyn_flows", {})
    hit = per_problem.get((names, objs, path))
    if hit is None:
        dims_key = tuple(sorted(problem.dims.items(), key=lambda kv: kv[0].name))
        noise = noise_kinds(problem)[0] if path == "structured" else ("thin", "thin")
        hit = per_problem[(names, objs, path)] = ((objs, dims_key, path, noise), {})
    key, bound = hit
    return FlowFunction(problem, names, _compiled_rhs(*key), key, path, bound)
