r"""Compile SymPy matrix expressions from `theory` into NumPy code.

Not `lambdify`: it cannot print `Trace`, and it multiplies chains left to right. Here

* each matrix chain $F_1 F_2 \cdots F_n$ is parenthesised by the classic matrix-chain
  dynamic programme on the *numeric* shapes;
* every product is cached by its factor tuple **and by its transpose**, so a sub-chain
  shared between $\dot W_A$ and $\dot W_B$ (e.g. $W_A\Sigma_A$) is computed once, and
  $\Sigma_A W_A^\top$ is read as $(W_A\Sigma_A)^\top$ instead of being recomputed;
* a scalar coefficient ($-\lambda$) multiplies the *smallest* matrix of its chain's
  product tree (an $m\times m$ factor, not the $m\times d$ result);
* with `varying=` (the state), everything that does not depend on the state is hoisted
  into a setup function that runs once per problem (`CompiledExpr.bind`), and the
  chain order treats those constant products as free;
* $\operatorname{tr}(PR)$ is emitted as $\sum_{ij} P_{ij} R_{ji}$ without the full product.

The generated source and a flop estimate of one call are kept on the result.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np
import sympy as sp
from sympy import MatAdd, MatMul, MatPow, MatrixSymbol, Trace, Transpose

from ._chainkeys import _canon, _shared_chains, _tkey
from ._chainorder import chain_cost, chain_order, tree_nodes
from ._compiled_expr import _NUMPY_FUNCTIONS, CompiledExpr, _code_name, _ident, _logdet


class _Emitter:
    def __init__(self, dims: Mapping[sp.Symbol, int], varying: set[str] | None, symmetric: frozenset):
        self.dims = dims
        self.varying = varying
        self.symmetric = symmetric
        self.setup: list[str] = []
        self.lines: list[str] = []
        self.cache: dict[object, str] = {}
        self.is_var: dict[str, bool] = {}
        self.inputs: dict[str, None] = {}
        self.owner: dict[str, str] = {}  # input name -> the SymPy name it came from
        self.count = 0
        self.shared: dict[tuple, int] = {}
        self.shapes: dict[sp.Expr, tuple[int, int]] = {}
        self.flops = self.setup_flops = 0.0
        self.n_ops = 0

    # -- bookkeeping ----------------------------------------------------------------------
    def tkey(self, mats: tuple) -> tuple:
        return _tkey(mats, self.symmetric)

    def count_shared(self, exprs) -> None:
        """Count sub-chains (length >= 2, up to transposition) that occur in several chains."""
        self.shared = _shared_chains(tuple(exprs), self.symmetric)

    def canon(self, mats: tuple) -> tuple:
        """One representative of a chain and its transpose (cheap keys: `str` of SymPy is slow)."""
        return _canon(mats, self.symmetric)

    def shape(self, e: sp.Expr) -> tuple[int, int]:
        hit = self.shapes.get(e)
        if hit is None:
            hit = self.shapes[e] = tuple(int(sp.sympify(s, strict=True).xreplace(self.dims)) for s in e.shape)  # type: ignore
        return hit

    def var(self, name: str) -> bool:
        """Whether a name (temp or input, possibly transposed) changes between calls."""
        return self.is_var.get(_base(name), False)

    def varies(self, e: sp.Expr) -> bool:
        if self.varying is None:
            return True
        names = {_ident(s.name) for s in e.atoms(MatrixSymbol, sp.Symbol)}
        return bool(names & self.varying)

    def fresh(self, code: str, key: object, operands: Iterable[str], flops: float) -> str:
        name = f"t{self.count}"
        self.count += 1
        var = self.varying is None or any(self.var(o) for o in operands)
        (self.lines if var else self.setup).append(f"{name} = {code}")
        if var:
            self.flops += flops
            self.n_ops += 1
        else:
            self.setup_flops += flops
        self.is_var[name] = var
        self.cache[key] = name
        return name

    # -- leaves ---------------------------------------------------------------------------
    def symbol(self, s: MatrixSymbol | sp.Symbol) -> str:
        name = _ident(s.name)
        first = self.owner.setdefault(name, s.name)
        if first != s.name:
            # Two symbols under one input name would silently share a value (a wrong loss).
            raise ValueError(f"compile: the symbols {first!r} and {s.name!r} both become the input name "
                             f"{name!r}; rename one of them")
        self.inputs[name] = None
        code = _code_name(name)
        self.is_var[code] = self.varying is None or name in self.varying
        return code

    def scalar(self, e: sp.Expr) -> str:
        if isinstance(e, sp.Symbol) and e in self.dims:
            return repr(float(self.dims[e]))  # tr(I_m) = m
        if isinstance(e, sp.Symbol):
            return self.symbol(e)
        if e.is_number:
            return repr(float(e))
        if isinstance(e, Trace):
            return self.trace(e.arg)
        if isinstance(e, sp.Determinant):
            inner = self.matrix(e.arg)
            return self.fresh(f"np.linalg.det({inner})", ("det", e), (inner,), self.shape(e.arg)[0] ** 3)
        if isinstance(e, sp.log) and isinstance(e.args[0], sp.Determinant):
            # log det from the LU factors (no overflow); NaN when det <= 0, as log would give.
            inner = self.matrix(e.args[0].arg)
            return self.fresh(f"_logdet({inner})", ("logdet", e), (inner,), self.shape(e.args[0].arg)[0] ** 3)
        if isinstance(e, sp.Function) and e.func in _NUMPY_FUNCTIONS:
            if e in self.cache:
                return self.cache[e]
            arg = self.scalar(e.args[0])
            return self.fresh(f"np.{_NUMPY_FUNCTIONS[e.func]}({arg})", e, (arg,), 1)
        if isinstance(e, (sp.Add, sp.Mul, sp.Pow)):
            if e in self.cache:
                return self.cache[e]
            parts = [self.scalar(a) for a in e.args]
            if isinstance(e, sp.Pow):
                code = f"({parts[0]} ** {parts[1]})"
            else:
                code = "(" + (" + " if isinstance(e, sp.Add) else " * ").join(parts) + ")"
            return self.fresh(code, e, parts, 1)
        raise TypeError(f"compile: cannot compile scalar node {type(e).__name__}: {e}")

    # -- matrices -------------------------------------------------------------------------
    def matrix(self, e: sp.Expr) -> str:
        if e in self.cache:
            return self.cache[e]
        if isinstance(e, MatrixSymbol):
            return self.symbol(e)
        if isinstance(e, Transpose):
            inner = self.matrix(e.arg)
            return inner.removesuffix(".T") if inner.endswith(".T") else f"{inner}.T"
        if isinstance(e, sp.Identity):
            return self.fresh(f"np.eye({self.shape(e)[0]})", e, (), 0)
        if isinstance(e, sp.ZeroMatrix):
            return self.fresh(f"np.zeros({self.shape(e)})", e, (), 0)
        if isinstance(e, sp.Inverse) or isinstance(e, MatPow) and e.exp.is_Integer and e.exp < 0:
            base = e.arg if isinstance(e, sp.Inverse) else MatPow(e.base, -e.exp).doit()
            inner = self.matrix(base)
            return self.fresh(f"np.linalg.inv({inner})", e, (inner,), 2 * self.shape(base)[0] ** 3)
        if isinstance(e, MatPow) and e.exp.is_Integer:
            inner = self.matrix(e.base)
            n = self.shape(e.base)[0]
            return self.fresh(f"np.linalg.matrix_power({inner}, {int(e.exp)})", e, (inner,),
                              2 * n ** 3 * max(1, int(e.exp).bit_length()))
        if isinstance(e, MatMul):
            coeff, mats = e.as_coeff_matrices()
            if coeff == 1:
                return self.chain(tuple(mats))
            return self.chain(tuple(mats), self.scalar(sp.sympify(coeff, strict=True)), e)
        if isinstance(e, MatAdd):
            parts = [self.matrix(a) for a in e.args]
            rows, cols = self.shape(e)
            return self.fresh(" + ".join(parts), e, parts,
                              rows * cols * (len(parts) - 1))
        raise TypeError(f"compile: cannot compile matrix node {type(e).__name__}: {e}")

    def lookup(self, mats: tuple) -> str | None:
        if mats in self.cache:
            return self.cache[mats]
        if self.tkey(mats) in self.cache:
            return self.cache[self.tkey(mats)] + ".T"
        return None

    def chain(self, mats: tuple, coeff: str | None = None, key: object = None) -> str:
        """Product of a chain in the cheapest order, scaled by `coeff` at its smallest node."""
        if len(mats) == 1 and coeff is None:
            return self.matrix(mats[0])
        if coeff is None and (hit := self.lookup(mats)) is not None:
            return hit
        dims = [self.shape(mats[0])[0]] + [self.shape(f)[1] for f in mats]

        def cached(i: int, j: int) -> bool:
            return self.lookup(mats[i:j + 1]) is not None

        def weight(i: int, j: int) -> float:
            if cached(i, j):
                return 0.0
            # Constant sub-chains are computed once, in the setup: nearly free per call.
            return 1e-3 if self.varying is not None and not any(map(self.varies, mats[i:j + 1])) else 1.0

        def amortise(i: int, j: int) -> int:
            sub = mats[i:j + 1]
            return self.shared.get(self.canon(sub), 1)

        split = chain_order(dims, weight, amortise)
        target = None
        if coeff is not None:
            # Scale the smallest matrix of the product tree (not inside an already computed
            # product, which would then be recomputed): the cheapest place for a scalar.
            nodes = tree_nodes(split, 0, len(mats) - 1, cached)
            target = min(nodes, key=lambda n: (dims[n[0]] * dims[n[1] + 1], n[0] - n[1]))
        out = self._emit(mats, 0, len(mats) - 1, split, dims, coeff, target)
        if key is not None:
            self.cache[key] = out
        return out

    def _emit(self, mats, i, j, split, dims, coeff, target) -> str:
        scale_here = coeff is not None and target == (i, j)
        if i == j:
            name = self.matrix(mats[i])
        elif (hit := self.lookup(mats[i:j + 1])) is not None:
            name = hit  # never contains the scaling target (see `chain`)
        else:
            k = split[i, j]
            left = self._emit(mats, i, k, split, dims, coeff, target)
            right = self._emit(mats, k + 1, j, split, dims, coeff, target)
            key = mats[i:j + 1] if not _inside(target, i, j) else ("scaled", coeff, i, j, mats)
            name = self.fresh(f"{left} @ {right}", key, (left, right),
                              2.0 * dims[i] * dims[k + 1] * dims[j + 1])
        if scale_here:
            name = self.fresh(f"{coeff} * {name}", ("scale", coeff, name), (coeff, name),
                              dims[i] * dims[j + 1])
        return name

    def trace(self, arg: sp.Expr) -> str:
        if isinstance(arg, MatMul):
            coeff, mats = arg.as_coeff_matrices()
            if len(mats) >= 2:
                # tr(P R) = sum(P * R^T): pick the split with the cheapest two halves.
                cost = lambda ms: chain_cost([self.shape(ms[0])[0]] + [self.shape(f)[1] for f in ms])  # noqa: E731
                best = min(range(1, len(mats)), key=lambda k: cost(mats[:k]) + cost(mats[k:]))
                p, q = self.chain(tuple(mats[:best])), self.chain(tuple(mats[best:]))
                rows, cols = self.shape(mats[0])[0], self.shape(mats[best])[0]
                s = self.fresh(f"np.einsum('ij,ji->', {p}, {q})", ("tr", arg), (p, q), 2 * rows * cols)
                return s if coeff == 1 else f"({self.scalar(sp.sympify(coeff, strict=True))} * {s})"
        inner = self.matrix(arg)
        return self.fresh(f"np.trace({inner})", ("tr", arg), (inner,), self.shape(arg)[0])


def _base(name: str) -> str:
    while name.endswith(".T"):
        name = name[:-2]
    return name


def _inside(target, i: int, j: int) -> bool:
    return target is not None and i <= target[0] and target[1] <= j


def compile_exprs(
    outputs: Mapping[str, sp.Expr], dims: Mapping[sp.Symbol, int], name: str = "compiled", *,
    varying: Iterable[str] | None = None, symmetric: Iterable[MatrixSymbol] = (),
) -> CompiledExpr:
    """Generate one NumPy function computing every expression in `outputs` (shared CSE).

    `varying`: names of the inputs that change between calls (the state); the rest is
    hoisted into a setup run by `bind`. `symmetric`: symbols with $S^\\top = S$, so that
    transposed products can be shared.
    """
    var = None if varying is None else {_ident(v) for v in varying}
    em = _Emitter(dims, var, frozenset(symmetric))
    em.count_shared(outputs.values())
    results = []
    for expr in outputs.values():
        if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1) or isinstance(expr, sp.ZeroMatrix):
            results.append(em.matrix(expr))
        else:
            results.append(em.scalar(expr))
    ret = f"return ({', '.join(results)},)"
    namespace: dict[str, object] = {"np": np, "_logdet": _logdet}
    if var is None:
        args = list(em.inputs)
        src = "\n".join([f"def {name}({', '.join(map(_code_name, args))}):", *("    " + ln for ln in em.lines),
                         "    " + ret])
        exec(compile(src, f"<cdyn:{name}>", "exec"), namespace)  # noqa: S102 -- our own generated code
        raw = namespace[name]

        def call(**env: object) -> tuple:
            return raw(*[env[k] for k in args])  # type: ignore[operator]

        return CompiledExpr(call, src, tuple(em.inputs), tuple(outputs), flops=em.flops, n_ops=em.n_ops)
    state = [_ident(v) for v in varying]  # type: ignore[union-attr]
    consts = [k for k in em.inputs if k not in var]
    src = "\n".join([f"def make_{name}({', '.join(map(_code_name, consts))}):", *("    " + ln for ln in em.setup),
                     f"    def {name}({', '.join(map(_code_name, state))}):", *("        " + ln for ln in em.lines),
                     "        " + ret, f"    return {name}"])
    exec(compile(src, f"<cdyn:{name}>", "exec"), namespace)  # noqa: S102 -- our own generated code
    raw_factory = namespace[f"make_{name}"]

    def factory(**given: object) -> Callable[..., tuple]:
        return raw_factory(*[given[k] for k in consts])  # type: ignore[operator]

    def flat(**env: object) -> tuple:
        return factory(**{k: env[k] for k in consts})(*[env[k] for k in state])

    inputs = tuple(dict.fromkeys([*consts, *[s for s in state if s in em.inputs]]))
    return CompiledExpr(flat, src, inputs, tuple(outputs), tuple(state), factory,  # type: ignore[arg-type]
                        em.flops, em.setup_flops, em.n_ops)
