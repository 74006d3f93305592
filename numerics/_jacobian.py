r"""Dense Jacobians assembled from the matrix-level operator derived in `theory`.

`theory.jacobian` gives, for each block (output $F$, state $S$), terms $c\,L\,V R$ and
$c\,L\,V^\top R$. Here $L$, $R$ and $c$ are compiled (one generated function, shared
products) and each term is written into the block, viewed as a 4-index array
$J_{(i,j),(k,l)}$ of the row-major vectorisation:

$$c\,L V R:\ J_{ijkl} \mathrel{+}= c\,L_{ik} R_{lj}, \qquad
  c\,L V^\top R:\ J_{ijlk} \mathrel{+}= c\,L_{ik} R_{lj},$$

with an identity $L$ or $R$ (an empty chain) written as a block diagonal. The matrix is
dense (the flow couples every entry of $W$ to every other), so it is only assembled
for states up to `MAX_DENSE` entries; stiff solvers use it for their Newton steps.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from cdyn import theory

from ._compile import CompiledExpr, compile_exprs

#: Largest state size for which a dense Jacobian is assembled (n² doubles, an O(n³) LU).
MAX_DENSE = 3000


def _chain_expr(ch: tuple) -> sp.Expr | None:
    if not ch:
        return None
    return ch[0] if len(ch) == 1 else sp.MatMul(*ch)


@lru_cache(maxsize=64)
def compile_jacobian(outputs: tuple[tuple[str, sp.Expr], ...], state: tuple[sp.MatrixSymbol, ...],
                     symmetric: tuple, dims_key: tuple) -> tuple[theory.Jacobian, CompiledExpr, list]:
    """Derive and compile the Jacobian; returns (operator, code, [(block, coeff, L, R, transposed)])."""
    jac = theory.jacobian(dict(outputs), state, symmetric)
    exprs: dict[str, sp.Expr] = {}
    plan = []
    for (out, s), terms in jac.blocks.items():
        for t in terms:
            i = len(plan)
            exprs[f"c{i}"] = t.coeff
            left, right = _chain_expr(t.left), _chain_expr(t.right)
            if left is not None:
                exprs[f"L{i}"] = left
            if right is not None:
                exprs[f"R{i}"] = right
            plan.append(((out, s), f"c{i}", f"L{i}" if left is not None else None,
                         f"R{i}" if right is not None else None, t.transposed))
    code = compile_exprs(exprs, dict(dims_key), "jac", varying=tuple(x.name for x in state), symmetric=symmetric)
    return jac, code, plan


class DenseJacobian:
    """`J(*state)`: the dense Jacobian of the flat right-hand side at a state."""

    def __init__(self, outputs: Mapping[str, sp.Expr], state: Sequence[sp.MatrixSymbol],
                 shapes: Mapping[str, tuple[int, int]], dims: Mapping, values: Mapping[str, object],
                 symmetric: tuple = ()):
        dims_key = tuple(sorted(dims.items(), key=lambda kv: kv[0].name))
        self.operator, code, self.plan = compile_jacobian(tuple(outputs.items()), tuple(state), symmetric, dims_key)
        self._fn = code.bind(**{k: values[k] for k in code.constants})
        self.names = list(code.outputs)
        names = [s.name for s in state]
        self.shapes = [shapes[n] for n in names]
        sizes = [a * b for a, b in self.shapes]
        self.offsets = dict(zip(names, np.cumsum([0] + sizes[:-1])))
        self.out_shapes = dict(zip(outputs, self.shapes))
        self.out_offsets = dict(zip(outputs, np.cumsum([0] + sizes[:-1])))
        self.n = int(sum(sizes))
        self.state_names = names

    def unflatten(self, y: np.ndarray) -> list[np.ndarray]:
        return [y[self.offsets[n]:self.offsets[n] + a * b].reshape(a, b)
                for n, (a, b) in zip(self.state_names, self.shapes)]

    def __call__(self, *state: np.ndarray) -> np.ndarray:
        vals = dict(zip(self.names, self._fn(*state)))
        J = np.zeros((self.n, self.n))
        for (out, s), c, L, R, transposed in self.plan:
            a, b = self.out_shapes[out]
            p, q = dict(zip(self.state_names, self.shapes))[s]
            r0, c0 = self.out_offsets[out], self.offsets[s]
            blk = J[r0:r0 + a * b, c0:c0 + p * q].reshape(a, b, p, q)  # a view: J is C-ordered
            _add_term(blk, float(vals[c]), vals.get(L), vals.get(R), transposed)
        return J

    def solver_jac(self) -> Callable[[float, np.ndarray], np.ndarray]:
        """`jac(t, y)` in the signature `solve_ivp` expects."""
        return lambda _t, y: self(*self.unflatten(y))


def _add_term(blk: np.ndarray, c: float, L: np.ndarray | None, R: np.ndarray | None, transposed: bool) -> None:
    a, b, p, q = blk.shape
    if c == 0.0:
        return
    if not transposed:  # J[i, j, k, l] += c L[i, k] R[l, j]
        if L is None and R is None:
            for i in range(a):
                blk[i, :, i, :] += c * np.eye(b)
        elif L is None:
            for i in range(a):
                blk[i, :, i, :] += c * R.T
        elif R is None:
            for j in range(b):
                blk[:, j, :, j] += c * L
        else:
            blk += c * np.einsum("ik,lj->ijkl", L, R)
    else:  # J[i, j, l, k] += c L[i, k] R[l, j]
        L = np.eye(a) if L is None else L
        R = np.eye(b) if R is None else R
        blk += c * np.einsum("ik,lj->ijlk", L, R)
