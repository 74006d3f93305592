"""`theory._content.compact`: the compact form the code generator gets is the same matrix, with fewer products.

The oracle for "the same matrix" is the symbolic chain comparison (`theory._chains.equal`) and, numerically, the
right-Horner form compiled from the same chains before this rewrite (`factor_right` alone), evaluated at random
states, with noise levels 0 (where a division by σ would fail) and 0.3.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from cdyn import theory
from cdyn.numerics._compile import compile_exprs
from cdyn.theory import _reduced as RS
from cdyn.theory._chains import chains, equal, factor_right
from cdyn.theory._content import compact, content

TERM_SETS = [("pos", "neg"), ("pos", "neg", "wd"), ("neg",), ("pos",), ("wd",), ("neg", "wd")]
OUTS = ("dX_A", "dY_A", "dX_B", "dY_B")


def _compiled(outputs, dims):
    return compile_exprs(outputs, dims, "rhs", varying=tuple(s.name for s in RS.STATE), symmetric=RS.SYMMETRIC)


def _dims(m, r, q):
    return {theory.symbols.m: m, RS.r_A: r, RS.r_B: r, RS.q_A: q, RS.q_B: q, theory.symbols.r: r}


@pytest.mark.parametrize("names", TERM_SETS)
def test_reduced_outputs_are_the_derived_flow(names):
    red = theory.reduced_flow(names)
    outs = red.outputs()
    for k in OUTS:
        assert equal(outs[k], getattr(red, k), RS.SYMMETRIC), k
    old = {k: factor_right(chains(getattr(red, k), RS.SYMMETRIC), getattr(red, k).shape) for k in OUTS}
    m, r, q = 3, 4, 2
    new_c, old_c = _compiled(outs, _dims(m, r, q)), _compiled(old, _dims(m, r, q))
    rng = np.random.default_rng(0)
    S = rng.standard_normal((r, r))
    for sigma in (0.0, 0.3):
        vals = {"lam": 0.7, "mu": 0.2, "sigma_A": sigma, "sigma_B": 0.5 * sigma, "bar_S__A": S @ S.T,
                "bar_S__B": S.T @ S + np.eye(r), "tilde_C": rng.standard_normal((r, r))}
        state = [rng.standard_normal(s) for s in ((m, r), (m, q), (m, r), (m, q))]
        a = new_c.bind(**{k: vals[k] for k in new_c.constants})(*state)
        b = old_c.bind(**{k: vals[k] for k in old_c.constants})(*state)
        for x, y in zip(a, b):
            x, y = np.broadcast_to(x, np.shape(y)), np.asarray(y)
            assert np.all(np.isfinite(x))
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(y).max()))


@pytest.mark.parametrize("m, r, q", [(32, 32, 32), (8, 32, 8), (32, 8, 32), (4, 64, 4), (16, 16, 0)])
def test_reduced_flow_compiles_to_fewer_operations(m, r, q):
    """pos + neg: −λH_B in Ẋ_A and −λσ_A²H_B in Ẏ_A are one node, so H_B is formed once."""
    red = theory.reduced_flow(("pos", "neg"))
    old = {k: factor_right(chains(getattr(red, k), RS.SYMMETRIC), getattr(red, k).shape) for k in OUTS}
    new_c, old_c = _compiled(red.outputs(), _dims(m, r, q)), _compiled(old, _dims(m, r, q))
    assert new_c.n_ops < old_c.n_ops and new_c.flops < old_c.flops


def test_hessian_vector_product_compiles_to_fewer_operations():
    S = theory.symbols
    flow = theory.structured_flow(("pos", "neg"), "isotropic", "isotropic")
    jac = theory.jacobian({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, (S.W_A, S.W_B), S.SYMMETRIC)
    vA, vB = jac.directions()
    dims = {S.m: 32, S.d_A: 64, S.d_B: 64, S.r: 32}
    var = ("W_A", "W_B", vA.name, vB.name)
    old = {k: jac.directional[k] for k in ("dW_A", "dW_B")}
    new = {k: compact(chains(e, S.SYMMETRIC), e.shape) for k, e in old.items()}
    for k in old:
        assert equal(new[k], old[k], S.SYMMETRIC)
    a = compile_exprs(new, dims, "hvp", varying=var, symmetric=S.SYMMETRIC)
    b = compile_exprs(old, dims, "hvp", varying=var, symmetric=S.SYMMETRIC)
    assert a.n_ops < b.n_ops and a.flops < b.flops


def test_content_keeps_coefficients_it_cannot_factor():
    """A trace in a coefficient (no polynomial gcd) is left as it is, not an error; the value is unchanged."""
    X, Y, Z = (sp.MatrixSymbol(s, 2, 2) for s in "XYZ")
    lam, sig = sp.symbols("lam sig", positive=True)
    e = sp.MatAdd(sp.Trace(X) * Y, -lam * Z * Y, -lam * sig**2 * X)
    out = content(e)
    assert out != e  # the two λ terms were grouped
    vals = {X: sp.ImmutableMatrix([[1, 2], [3, 4]]), Y: sp.ImmutableMatrix([[0, 1], [1, 0]]),
            Z: sp.ImmutableMatrix([[2, 0], [1, 1]]), lam: sp.Rational(3, 2), sig: 2}
    got, want = (sp.Matrix(x.xreplace(vals).doit()) for x in (out, e))
    assert got == want
