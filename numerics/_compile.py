r"""Compile SymPy matrix expressions from `theory` into NumPy code.

Not `lambdify`: it cannot print `Trace`, and it multiplies chains left to right. Here
each matrix chain $F_1 F_2 \cdots F_n$ is parenthesised by the classic matrix-chain
dynamic programme on the *numeric* shapes, and every product is cached by its factor
tuple, so a sub-chain shared between $\dot W_A$ and $\dot W_B$ (e.g. $W_A\Sigma_A$) is
computed once. $\operatorname{tr}(PR)$ is emitted as $\sum_{ij} P_{ij} R_{ji}$ without the
full product. The generated source is kept on the result for inspection.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import sympy as sp
from sympy import MatAdd, MatMul, MatrixSymbol, Trace, Transpose


@dataclass(frozen=True)
class CompiledExpr:
    """A NumPy function of named arrays/scalars, generated from SymPy expressions."""

    fn: Callable[..., tuple]
    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __call__(self, **env: object) -> tuple:
        return self.fn(**env)


class _Emitter:
    def __init__(self, dims: Mapping[sp.Symbol, int]):
        self.dims = dims
        self.lines: list[str] = []
        self.cache: dict[object, str] = {}
        self.inputs: dict[str, None] = {}
        self.count = 0
        self.shared: dict[tuple, int] = {}

    def count_shared(self, exprs) -> None:
        """Count sub-chains (length >= 2) that occur in more than one chain."""
        seen: dict[tuple, int] = {}
        for expr in exprs:
            for node in sp.preorder_traversal(expr):
                if isinstance(node, MatMul):
                    mats = tuple(node.as_coeff_matrices()[1])
                    subs = {mats[i:j] for i in range(len(mats)) for j in range(i + 2, len(mats) + 1)}
                    for sub in subs:
                        seen[sub] = seen.get(sub, 0) + 1
        self.shared = {k: v for k, v in seen.items() if v > 1}

    def shape(self, e: sp.Expr) -> tuple[int, int]:
        return tuple(int(sp.sympify(s).xreplace(self.dims)) for s in e.shape)  # type: ignore[return-value]

    def fresh(self, code: str, key: object) -> str:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"    {name} = {code}")
        self.cache[key] = name
        return name

    # -- leaves -------------------------------------------------------------------------
    def symbol(self, s: MatrixSymbol | sp.Symbol) -> str:
        name = _ident(s.name)
        self.inputs[name] = None
        return name

    def scalar(self, e: sp.Expr) -> str:
        if isinstance(e, sp.Symbol):
            return self.symbol(e)
        if e.is_Number:
            return repr(float(e))
        if isinstance(e, Trace):
            return self.trace(e.arg)
        if isinstance(e, (sp.Add, sp.Mul, sp.Pow)):
            parts = [self.scalar(a) for a in e.args]
            if isinstance(e, sp.Pow):
                return f"({parts[0]} ** {parts[1]})"
            return "(" + (" + " if isinstance(e, sp.Add) else " * ").join(parts) + ")"
        raise TypeError(f"compile: cannot compile scalar node {type(e).__name__}: {e}")

    # -- matrices -----------------------------------------------------------------------
    def matrix(self, e: sp.Expr) -> str:
        if e in self.cache:
            return self.cache[e]
        if isinstance(e, MatrixSymbol):
            return self.symbol(e)
        if isinstance(e, Transpose):
            if isinstance(e.arg, MatrixSymbol):
                return f"{self.symbol(e.arg)}.T"
            return f"{self.matrix(e.arg)}.T"
        if isinstance(e, sp.Identity):
            return self.fresh(f"np.eye({self.shape(e)[0]})", e)
        if isinstance(e, sp.ZeroMatrix):
            return self.fresh(f"np.zeros({self.shape(e)})", e)
        if isinstance(e, MatMul):
            coeff, mats = e.as_coeff_matrices()
            body = self.chain(tuple(mats))
            if coeff == 1:
                return body
            return self.fresh(f"{self.scalar(sp.sympify(coeff))} * {body}", e)
        if isinstance(e, MatAdd):
            return self.fresh(" + ".join(self.matrix(a) for a in e.args), e)
        raise TypeError(f"compile: cannot compile matrix node {type(e).__name__}: {e}")

    def chain(self, mats: tuple[sp.Expr, ...]) -> str:
        """Product of a chain, with optimal order given shapes and already-cached products."""
        n = len(mats)
        if n == 1:
            return self.matrix(mats[0])
        if mats in self.cache:
            return self.cache[mats]
        dims = [self.shape(mats[0])[0]] + [self.shape(f)[1] for f in mats]
        cost = {}
        split = {}
        for i in range(n):
            cost[i, i] = 0
        for length in range(2, n + 1):
            for i in range(n - length + 1):
                j = i + length - 1
                if mats[i:j + 1] in self.cache:
                    cost[i, j], split[i, j] = 0, None
                    continue
                cost[i, j], split[i, j] = min(
                    (cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1], k)
                    for k in range(i, j)
                )
                # A product used by several chains is paid once: amortise it.
                cost[i, j] /= self.shared.get(mats[i:j + 1], 1)
        return self._emit_split(mats, 0, n - 1, split)

    def _emit_split(self, mats, i, j, split) -> str:
        if i == j:
            return self.matrix(mats[i])
        key = mats[i:j + 1]
        if key in self.cache:
            return self.cache[key]
        k = split[i, j]
        left = self._emit_split(mats, i, k, split)
        right = self._emit_split(mats, k + 1, j, split)
        return self.fresh(f"{left} @ {right}", key)

    def trace(self, arg: sp.Expr) -> str:
        if isinstance(arg, MatMul):
            coeff, mats = arg.as_coeff_matrices()
            if len(mats) >= 2:
                # tr(P R) = sum(P * R^T): pick the split with the cheapest two halves.
                best = min(range(1, len(mats)), key=lambda k: self._chain_cost(mats[:k]) + self._chain_cost(mats[k:]))
                p, q = self.chain(tuple(mats[:best])), self.chain(tuple(mats[best:]))
                s = self.fresh(f"np.einsum('ij,ji->', {p}, {q})", ("tr", arg))
                return s if coeff == 1 else f"({self.scalar(sp.sympify(coeff))} * {s})"
        return self.fresh(f"np.trace({self.matrix(arg)})", ("tr", arg))

    def _chain_cost(self, mats) -> int:
        if len(mats) == 1:
            return 0
        dims = [self.shape(mats[0])[0]] + [self.shape(f)[1] for f in mats]
        n = len(mats)
        cost = {(i, i): 0 for i in range(n)}
        for length in range(2, n + 1):
            for i in range(n - length + 1):
                j = i + length - 1
                cost[i, j] = min(cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1] for k in range(i, j))
        return cost[0, n - 1]


def _ident(name: str) -> str:
    """A Python identifier for a SymPy name (`lambda` is a keyword, so it becomes `lam`)."""
    out = "".join(c if c.isalnum() else "_" for c in name.replace("\\", "")).strip("_")
    return out + "_" if keyword.iskeyword(out) and out != "lambda" else ("lam" if out == "lambda" else out)


def compile_exprs(
    outputs: Mapping[str, sp.Expr], dims: Mapping[sp.Symbol, int], name: str = "compiled"
) -> CompiledExpr:
    """Generate one NumPy function computing every expression in `outputs` (shared CSE)."""
    em = _Emitter(dims)
    em.count_shared(outputs.values())
    results = []
    for out, expr in outputs.items():
        if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1) or isinstance(expr, sp.ZeroMatrix):
            results.append(em.matrix(expr))
        else:
            results.append(em.scalar(expr))
    args = ", ".join(em.inputs)
    src = "\n".join([f"def {name}({args}):", *em.lines, f"    return ({', '.join(results)},)"])
    namespace: dict[str, object] = {"np": np}
    exec(compile(src, f"<cdyn:{name}>", "exec"), namespace)  # noqa: S102 -- our own generated code
    return CompiledExpr(namespace[name], src, tuple(em.inputs), tuple(outputs))  # type: ignore[arg-type]
