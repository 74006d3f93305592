r"""The batch gradient of `theory._batch_structured`, compiled: the batch as its factors, no $d\times d$ product.

Three generated programs per (terms, noise kinds, sizes), each from the SymPy expressions:

1. the features $F_A = (W_A A)Z^\top + (W_A A_\xi)\Xi_A^\top$ (or $\sigma_A W_A\Xi_A^\top$), $F_B$: $m\times n$;
2. the coefficients $P_A(F_A, F_B)$, $P_B$ (and the batch loss), with the Hadamard products of
   the U-statistic evaluated by `compile_staged`: only $m\times n$ and $m\times m$ matrices;
3. the gradients $(P_A Z)A^\top + (P_A\Xi_A)A_\xi^\top + R_A$, $\nabla_{W_B}$ likewise.

A step costs $O(m\,(d+n)(r+k))$ flops ($O(m\,d\,(n+r))$ under isotropic noise) and allocates
a few $m\times d$ and $m\times n$ arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import numpy as np
from sympy import ZeroMatrix

from cdyn.theory import _batch_structured as tbs
from cdyn.theory import get_term
from cdyn.theory._batch import n as n_sym

from ._batchfn import compile_staged
from ._compile import compile_exprs
from ._problem import Problem
from ._structured import noise_kinds, values_for
from ._validate import as_int

Env = dict[str, object]


@lru_cache(maxsize=64)
def _compiled(terms: tuple, negatives: str, noise: tuple[str, str], dims_key: tuple, with_loss: bool):
    # Keyed on the LossTerm objects: re-registering a term name compiles afresh.
    fb = tbs._feature_batch(terms, negatives, *noise)
    dims = dict(dims_key)
    tag = "_".join(t.name for t in terms)
    has_data = fb.coeff_A != ZeroMatrix(*fb.coeff_A.shape) or fb.coeff_B != ZeroMatrix(*fb.coeff_B.shape)
    feats = compile_exprs({"F_A": fb.features_A, "F_B": fb.features_B}, dims, f"features_{tag}") if has_data else None
    outs = {"P_A": fb.coeff_A, "P_B": fb.coeff_B}
    coeffs = compile_staged(({"loss": fb.loss} if with_loss else {}) | outs, dims, f"coeffs_{tag}")
    back = compile_exprs({"grad_A": fb.grad_A, "grad_B": fb.grad_B}, dims, f"back_{tag}")
    return feats, coeffs, back


def _inputs(*programs: object) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for prog in programs:
        names.update(dict.fromkeys(getattr(prog, "inputs", ())))
    return tuple(names)


@dataclass(frozen=True, eq=False)
class StructuredBatchFunction:
    r"""$(W_A, W_B, Z, \Xi_A, \Xi_B) \mapsto (\hat L, \nabla_{W_A}\hat L, \nabla_{W_B}\hat L)$ for a batch of `n` pairs.

    The same estimator as `BatchFunction` on $X_A = ZA^\top + \Xi_A A_\xi^\top$; `grad` skips the loss.
    """

    problem: Problem
    terms: tuple[str, ...]
    n: int
    negatives: str
    noise: tuple[str, str]
    _progs: tuple
    _progs_grad: tuple
    _data: Env

    def _run(self, progs: tuple, W_A: np.ndarray, W_B: np.ndarray, Z: np.ndarray, Xi_A: np.ndarray,
             Xi_B: np.ndarray) -> tuple:
        feats, coeffs, back = progs
        env = self._data | {"W_A": W_A, "W_B": W_B, "Z": Z, "Xi_A": Xi_A, "Xi_B": Xi_B}
        if feats is not None:
            env["F_A"], env["F_B"] = feats(**{k: env[k] for k in feats.inputs})
        *loss, env["P_A"], env["P_B"] = coeffs(env)
        gA, gB = back(**{k: env[k] for k in back.inputs})
        return (*loss, _full(gA, W_A.shape), _full(gB, W_B.shape))

    def __call__(self, W_A: np.ndarray, W_B: np.ndarray, Z: np.ndarray, Xi_A: np.ndarray,
                 Xi_B: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loss, gA, gB = self._run(self._progs, W_A, W_B, Z, Xi_A, Xi_B)
        return float(loss), gA, gB

    def grad(self, W_A: np.ndarray, W_B: np.ndarray, Z: np.ndarray, Xi_A: np.ndarray,
             Xi_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._run(self._progs_grad, W_A, W_B, Z, Xi_A, Xi_B)

    @property
    def flops(self) -> float:
        """Estimated flops of one `grad` call (the features, the coefficients' chains, the gradients)."""
        return sum(getattr(p, "flops", 0.0) for p in (self._progs_grad[0], self._progs_grad[2]))


def _full(g: object, shape: tuple[int, ...]) -> np.ndarray:
    # A term with no gradient compiles to a scalar 0; give it the weights' shape.
    return g if np.shape(g) == shape else np.broadcast_to(g, shape)


def structured_batch_function(problem: Problem, terms: tuple[str, ...], n: int,
                              negatives: str = "u") -> StructuredBatchFunction:
    r"""Compile the feature form of the batch estimator of `terms` for batches of `n` pairs.

    **Raises** `theory._batch_structured.NotFeatureForm` (a `ValueError`) for a term whose batch
    gradient does not factor through the features.
    """
    if negatives not in ("u", "v"):
        raise ValueError(f"negatives: expected 'u' or 'v', got {negatives!r}")
    noise, _ = noise_kinds(problem)
    n = as_int("batch", n, low=2 if negatives == "u" and "neg" in terms else 1)
    dims = problem.dims | {n_sym: n}
    key = tuple(sorted(dims.items(), key=lambda kv: kv[0].name))
    objs = tuple(get_term(t) for t in terms)
    progs = _compiled(objs, negatives, noise, key, True)
    progs_grad = _compiled(objs, negatives, noise, key, False)
    # Only the inputs the programs read: Problem.Sigma_A (d×d) is never asked for.
    given = {"W_A", "W_B", "Z", "Xi_A", "Xi_B", "F_A", "F_B", "P_A", "P_B"}
    wanted = [k for k in _inputs(progs[0], progs[2], progs_grad[0], progs_grad[2]) if k not in given]
    wanted += [k for k in ("lam", "mu", *problem.params) if k not in wanted]  # the staged program's scalars
    return StructuredBatchFunction(problem, tuple(terms), n, negatives, noise, progs, progs_grad,
                                   values_for(problem, tuple(wanted)) | {"n": float(n)})


__all__ = ["StructuredBatchFunction", "structured_batch_function"]
