"""Generated right-hand sides against hand-written NumPy and against SymPy's lambdify."""

from __future__ import annotations

import numpy as np
import sympy as sp
from threadpoolctl import threadpool_limits

from cdyn import numerics
from cdyn import theory
from cases import scaling_problem
from oracles import hand_full_field, hand_structured_field
from timing import Row, interleaved_medians

S = theory.symbols


def _lambdify_field(p: numerics.Problem):
    """lambdify's code: `W_B@Sigma_B@W_B.T@W_A@Sigma_A`, left to right, nothing shared."""
    flow = theory.gradient_flow(("pos", "neg"))
    fn = sp.lambdify([S.W_A, S.W_B, S.Sigma_A, S.Sigma_B, S.C, S.lam], [flow.dW_A, flow.dW_B], "numpy")
    m, d_A, d_B = p.m, p.d_A, p.d_B
    n = m * d_A
    SA, SB, C, lam = p.Sigma_A, p.Sigma_B, p.C, p.lam

    def f(_t, y):
        a, b = fn(y[:n].reshape(m, d_A), y[n:].reshape(m, d_B), SA, SB, C, lam)
        out = np.empty(y.shape)
        out[:n], out[n:] = a.ravel(), b.ravel()
        return out

    return f


def run(quick: bool) -> list[Row]:
    rows = []
    for d in (16, 64, 256, 1024):
        p = scaling_problem(d, r=8, m=32)
        y = np.random.default_rng(d).standard_normal(p.m * (p.d_A + p.d_B)) * 0.1
        ours = numerics.flow_function(p, path="full").vector_field()
        hand = hand_full_field(p.Sigma_A, p.Sigma_B, p.C, p.lam, p.m)
        lamb = _lambdify_field(p)
        assert np.allclose(ours(0, y), hand(0, y), rtol=1e-11, atol=1e-13)
        assert np.allclose(ours(0, y), lamb(0, y), rtol=1e-10, atol=1e-12)
        number = max(1, int(2e7 / (8 * p.m * d * d)))  # ~equal wall time per repeat
        repeats = 15 if quick else 41
        with threadpool_limits(1):
            t_ours, t_hand, t_lamb = interleaved_medians(
                [lambda: ours(0, y), lambda: hand(0, y), lambda: lamb(0, y)], repeats, number)
        evals = str(repeats * number)
        rows.append(Row("codegen", f"full RHS d={d} m=32: generated vs hand-written", t_ours, t_hand, evals,
                        "1 thread"))
        rows.append(Row("codegen", f"full RHS d={d} m=32: generated vs lambdify", t_ours, t_lamb, evals, "1 thread"))
    for d in (1024, 4096):
        p = scaling_problem(d, r=32, m=32)
        y = np.random.default_rng(d).standard_normal(p.m * (p.d_A + p.d_B)) * 0.1
        ours = numerics.flow_function(p, path="structured").vector_field()
        hand = hand_structured_field(p.A, p.B, p.Sigma_z, 0.1, 0.1, p.lam, p.m)
        assert np.allclose(ours(0, y), hand(0, y), rtol=1e-10, atol=1e-12)
        repeats, number = (15, 5) if quick else (41, 10)
        with threadpool_limits(1):
            t_ours, t_hand = interleaved_medians([lambda: ours(0, y), lambda: hand(0, y)], repeats, number)
        rows.append(Row("codegen", f"structured RHS d={d} r=m=32: generated vs hand-written", t_ours, t_hand,
                        str(repeats * number), "1 thread"))
    return rows
