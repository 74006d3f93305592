r"""The batch estimators of `theory._batch`, compiled for one problem and one batch size.

`compile_exprs` knows matrix chains, sums and traces but not Hadamard products, which
the U-statistic needs ($I \circ E$ keeps the diagonal of the $n\times n$ batch logit
matrix). They are compiled in stages: each Hadamard node becomes a fresh input symbol,
its factors are compiled with `compile_exprs` and combined entry-wise, then the outputs
are compiled with those symbols as inputs. Where only a diagonal is needed
($\operatorname{tr}(E_1\circ E_2)$, $I\circ E$) it is computed as
$\operatorname{diag}(PR)_i = \sum_k P_{ik}R_{ki}$ from a split $E = PR$ through the
smallest inner dimension, and a diagonal factor of a chain is folded into its neighbour
($X^\top D Y = X^\top (DY)$), so a step costs $O(n\,d\,m)$, not $O(n^2)$. Everything is
generated from the SymPy expressions; nothing is hand-typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
from sympy import HadamardPower, HadamardProduct, MatMul, MatrixSymbol, OneMatrix

from cdyn.theory import _batch as tb
from cdyn.theory import get_term
from cdyn.theory._diskcache import disk_cached

from ._compile import compile_exprs
from ._problem import Problem
from ._validate import as_int

Env = dict[str, object]


def _is_had(e: sp.Expr) -> bool:
    return isinstance(e, (HadamardProduct, HadamardPower))


def _factors(node: sp.Expr) -> list[sp.Expr]:
    if isinstance(node, HadamardPower):
        return [node.base] * int(node.exp)
    return list(node.args)


def _is_leaf(e: sp.Expr) -> bool:
    return isinstance(e, MatrixSymbol) or isinstance(e, sp.Transpose) and isinstance(e.arg, MatrixSymbol)


class _Stages:
    r"""Hadamard nodes, hoisted into symbols and evaluated in creation (= dependency) order.

    Three kinds, so that an $n\times n$ matrix is formed only when it must be:
    `trace` ($\operatorname{tr}(E_1\circ E_2) = \sum_i (E_1)_{ii}(E_2)_{ii}$, a scalar),
    `diag` ($I \circ E$: only the diagonal, kept as a vector and folded into the
    neighbouring batch matrix of a chain as a row scaling) and `dense`.
    """

    def __init__(self, dims: dict):
        self.dims = dims
        self.items: list[tuple[str, str, list[sp.Expr]]] = []  # (symbol name, kind, factors)
        self.seen: dict[tuple[str, sp.Expr], sp.Expr] = {}
        self.scaled: list[tuple[str, str, sp.Expr, bool]] = []  # (name, diag symbol, leaf, rows?)

    def _add(self, kind: str, node: sp.Expr, factors: list[sp.Expr], make) -> sp.Expr:
        if kind != "dense":  # diag(M^T) = diag(M): one key for both, so the work is shared
            factors = [min(f, sp.Transpose(f).doit(), key=sp.default_sort_key) for f in factors]
        key = (kind, getattr(node, "shape", ()), tuple(sorted(factors, key=sp.default_sort_key)))
        if key not in self.seen:
            # Named unlike the code generator's temporaries (t0, t1, ...).
            self.seen[key] = make(f"had_{kind}{len(self.items)}")
            self.items.append((self.seen[key].name, kind, factors))
        return self.seen[key]

    def hoist(self, expr: sp.Expr) -> sp.Expr:
        def trace(e: sp.Expr) -> sp.Expr:
            fs = [self.hoist(f) for f in _factors(e.arg) if not isinstance(f, sp.Identity)]
            return self._add("trace", e, fs, sp.Symbol)

        def had(e: sp.Expr) -> sp.Expr:
            # Bottom-up: the factors of `e` hold no Hadamard nodes any more.
            fs = _factors(e)
            dense = [f for f in fs if not isinstance(f, sp.Identity)]
            kind = "diag" if len(dense) < len(fs) else "dense"
            return self._add(kind, e, dense, lambda nm: MatrixSymbol(nm, *e.shape))

        expr = expr.replace(lambda e: isinstance(e, sp.Trace) and _is_had(e.arg), trace)
        expr = expr.replace(_is_had, had)
        return expr.replace(lambda e: isinstance(e, MatMul) and any(self._is_diag(a) for a in e.args), self._absorb)

    def _is_diag(self, e: sp.Expr) -> bool:
        return isinstance(e, MatrixSymbol) and any(nm == e.name and k == "diag" for nm, k, _ in self.items)

    def _absorb(self, e: MatMul) -> sp.Expr:
        """Fold each diagonal factor into the leaf beside it: $X^\\top D Y = X^\\top (D Y)$."""
        coeff, mats = e.as_coeff_matrices()
        mats = list(mats)
        for p in range(len(mats)):
            if not self._is_diag(mats[p]):
                continue
            for q, rows in ((p + 1, True), (p - 1, False)):
                if 0 <= q < len(mats) and _is_leaf(mats[q]) and not self._is_diag(mats[q]):
                    sym = MatrixSymbol(f"had_scaled{len(self.scaled)}", *mats[q].shape)
                    self.scaled.append((sym.name, mats[p].name, mats[q], rows))
                    mats[q], mats[p] = sym, None
                    break
        return coeff * MatMul(*[m for m in mats if m is not None])

    def diag_parts(self, f: sp.Expr) -> tuple[sp.Expr, sp.Expr | None]:
        r"""$(P, R)$ with $\operatorname{diag}(f) = \operatorname{diag}(PR)$, split where the inner size is least."""
        f = f.arg if isinstance(f, sp.Transpose) and not _is_leaf(f) else f
        if not isinstance(f, MatMul):
            return f, None
        coeff, mats = f.as_coeff_matrices()
        size = lambda k: int(sp.sympify(mats[k].shape[0], strict=True).xreplace(self.dims))  # noqa: E731
        k = min(range(1, len(mats)), key=size)
        return coeff * MatMul(*mats[:k]), MatMul(*mats[k:])


def compile_staged(outputs: dict[str, sp.Expr], dims: dict, name: str = "batch") -> Callable[[Env], tuple]:
    """A function `env -> outputs` for expressions that may contain Hadamard products."""
    st = _Stages(dims)
    flat = {k: st.hoist(v) for k, v in outputs.items()}
    ones = {o: MatrixSymbol(f"had_ones{i}", *o.shape) for i, o in enumerate(
        set().union(*(e.atoms(OneMatrix) for e in flat.values())))}
    ones_shape = {s.name: tuple(int(sp.sympify(d, strict=True).xreplace(dims)) for d in o.shape) for o, s in ones.items()}
    flat = {k: v.xreplace(ones) for k, v in flat.items()}

    # One program per dependency level: a stage reads only the symbols of earlier levels.
    level: dict[str, int] = {}
    parts_by_level: dict[int, dict[str, sp.Expr]] = {}
    for sym, kind, factors in st.items:
        factors = [f.xreplace(ones) for f in factors]
        used = {a.name for f in factors for a in f.atoms(MatrixSymbol, sp.Symbol) if a.name in level}
        level[sym] = 1 + max((level[u] for u in used), default=-1)
        parts = parts_by_level.setdefault(level[sym], {})
        for q, f in enumerate(factors):
            if kind == "dense":
                parts[f"{sym}_f{q}"] = f
            else:  # only diagonals are needed: each factor as a split product P R
                P, R = st.diag_parts(f)
                parts[f"{sym}_p{q}"] = P
                if R is not None:
                    parts[f"{sym}_r{q}"] = R
    programs = [compile_exprs(parts_by_level[k], dims, f"{name}_level{k}") for k in sorted(parts_by_level)]
    by_level = [[it for it in st.items if level[it[0]] == k] for k in sorted(parts_by_level)]
    final = compile_exprs(flat, dims, name)

    # Resolved once, not per call: a step of SGD at small sizes costs about as much as this bookkeeping.
    ones_vals = {nm: np.ones(shape) for nm, shape in ones_shape.items()}
    for a in ones_vals.values():
        a.setflags(write=False)
    scaled = [(s, dn, leaf.name if isinstance(leaf, MatrixSymbol) else leaf.arg.name,
               not isinstance(leaf, MatrixSymbol), rows) for s, dn, leaf, rows in st.scaled]
    diag_in_final = [sym for sym, kind, _ in st.items if kind == "diag" and sym in final.inputs]

    def run(env: Env) -> tuple:
        env = dict(env) | ones_vals
        for code, items in zip(programs, by_level):
            vals = dict(zip(code.outputs, code(**{k: env[k] for k in code.inputs})))
            for sym, kind, factors in items:
                if kind == "dense":
                    out = vals[f"{sym}_f0"]
                    for q in range(1, len(factors)):
                        out = out * vals[f"{sym}_f{q}"]
                else:
                    out = np.ones(1)
                    for q in range(len(factors)):
                        P, R = vals[f"{sym}_p{q}"], vals.get(f"{sym}_r{q}")
                        out = out * (np.diag(P) if R is None else np.einsum("ij,ji->i", P, R))
                    out = float(np.sum(out)) if kind == "trace" else out
                env[sym] = out
        for sname, dname, leaf, transposed, rows in scaled:
            v = env[leaf].T if transposed else env[leaf]
            env[sname] = env[dname][:, None] * v if rows else v * env[dname][None, :]
        for sym in diag_in_final:  # a diagonal no leaf could absorb
            env[sym] = np.diag(env[sym])
        return final(**{k: env[k] for k in final.inputs})

    return run


@lru_cache(maxsize=64)
@disk_cached
def _outputs(terms: tuple, negatives: str, with_loss: bool) -> dict[str, sp.Expr]:
    """The estimator's expressions, for any batch size (the size enters only when compiled)."""
    bts = [tb.batch_term(t.name, negatives) for t in terms]
    outs = {"grad_A": sp.MatAdd(*[bt.weight * bt.grad_A for bt in bts]).doit(),
            "grad_B": sp.MatAdd(*[bt.weight * bt.grad_B for bt in bts]).doit()}
    if with_loss:
        outs = {"loss": sp.Add(*[bt.weight * bt.loss for bt in bts])} | outs
    return outs


@lru_cache(maxsize=64)
def _compiled(terms: tuple, negatives: str, dims_key: tuple, with_loss: bool) -> Callable[[Env], tuple]:
    # Keyed on the LossTerm objects: re-registering a term name compiles afresh.
    return compile_staged(_outputs(terms, negatives, with_loss), dict(dims_key),
                          "batch_" + "_".join(t.name for t in terms) + ("_loss" if with_loss else ""))


@dataclass(frozen=True, eq=False)
class BatchFunction:
    r"""$(W_A, W_B, X_A, X_B) \mapsto (\hat L, \nabla_{W_A}\hat L, \nabla_{W_B}\hat L)$ for a batch of `n` pairs.

    `grad` skips the loss (an SGD step needs only the gradient).
    """

    problem: Problem
    terms: tuple[str, ...]
    n: int
    negatives: str
    _run: Callable[[Env], tuple]
    _run_grad: Callable[[Env], tuple]
    _data: Env

    def _env(self, W_A: np.ndarray, W_B: np.ndarray, X_A: np.ndarray, X_B: np.ndarray) -> Env:
        if X_A.shape != (self.n, self.problem.d_A) or X_B.shape != (self.n, self.problem.d_B):
            raise ValueError(f"X_A, X_B: expected shapes ({self.n}, {self.problem.d_A}) and "
                             f"({self.n}, {self.problem.d_B}), got {X_A.shape} and {X_B.shape}")
        return self._data | {"W_A": W_A, "W_B": W_B, "X_A": X_A, "X_B": X_B}

    def __call__(self, W_A: np.ndarray, W_B: np.ndarray, X_A: np.ndarray,
                 X_B: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loss, gA, gB = self._run(self._env(W_A, W_B, X_A, X_B))
        return float(loss), _full(gA, W_A.shape), _full(gB, W_B.shape)

    def grad(self, W_A: np.ndarray, W_B: np.ndarray, X_A: np.ndarray,
             X_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gA, gB = self._run_grad(self._env(W_A, W_B, X_A, X_B))
        return _full(gA, W_A.shape), _full(gB, W_B.shape)


def _full(g: object, shape: tuple[int, ...]) -> np.ndarray:
    # A term with no gradient compiles to a scalar 0; give it the weights' shape.
    return g if np.shape(g) == shape else np.broadcast_to(g, shape)


def batch_function(problem: Problem, terms: object = ("pos", "neg"), n: int = 256,
                   negatives: str = "u") -> BatchFunction:
    r"""Compile the batch estimator of $L = \sum_t w_t L_t$ (the registered `terms`) for batches of `n`.

    `negatives="u"` is the unbiased off-diagonal U-statistic (needs $n \ge 2$); `"v"`
    keeps the diagonal (biased, for comparison).
    """
    from ._flowfn import normalize_terms

    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    names = normalize_terms(terms)
    if negatives not in ("u", "v"):
        raise ValueError(f"negatives: expected 'u' or 'v', got {negatives!r}")
    kinds = {tb.batch_term(t, negatives).kind for t in names}
    # The U-statistic averages over i != j: a batch of one pair has no negative.
    n = as_int("batch", n, low=2 if "u-statistic" in kinds else 1)
    dims = problem.dims | {tb.n: n}
    key = tuple(sorted(dims.items(), key=lambda kv: kv[0].name))
    objs = tuple(get_term(t) for t in names)
    return BatchFunction(problem, names, n, negatives, _compiled(objs, negatives, key, True),
                         _compiled(objs, negatives, key, False), problem.values() | {"n": float(n)})


__all__ = ["BatchFunction", "batch_function", "compile_staged"]
