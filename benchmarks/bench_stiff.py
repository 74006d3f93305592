"""Stiff instances (data condition number κ_C ≥ 1e3): explicit against implicit solvers."""

from __future__ import annotations

import contextlib

import numpy as np

from cdyn import numerics
import cdyn.numerics._integrate as integ
from cases import stiff_problem
from cdyn.numerics._autochoice import data_condition
from timing import Row, timed

METHODS = (("RK45", False), ("DOP853", False), ("LSODA", False), ("LSODA", True), ("BDF", False),
           ("BDF", True), ("Radau", True))


@contextlib.contextmanager
def counting():
    """Count every right-hand side evaluation (steps, finite-difference Jacobian columns,
    event checks): scipy's `nfev` leaves out BDF/Radau's finite-difference columns."""
    box = {"n": 0}
    original = integ.build_system

    def build(*args, **kw):
        system = original(*args, **kw)
        make = system.make_f

        def make_counted():
            f = make()

            def g(t, y):
                box["n"] += 1
                return f(t, y)
            return g

        system.make_f = make_counted
        return system

    integ.build_system = build
    try:
        yield box
    finally:
        integ.build_system = original


def _run(p, W, method, jac, kw):
    with counting() as box:
        tr = numerics.integrate(p, *W, method=method, jac=jac, **kw)
    return tr, box["n"]


def _case(label: str, p, path: str, quick: bool) -> tuple[list[Row], dict]:
    W = numerics.random_init(p, 1e-3, 0)
    kw = dict(t_end=30000.0, grad_tol=1e-6, path=path)
    ref = numerics.integrate(p, *W, method="Radau", jac=True, rtol=1e-11, atol=1e-14, **kw)
    results = {}
    for method, jac in METHODS:
        if quick and method == "BDF" and not jac:
            continue
        reps = 1 if quick or method in ("RK45", "DOP853") else 3
        t, (tr, calls) = timed(lambda: _run(p, W, method, jac, kw), reps)
        err = float(np.abs(tr.W_A[-1] - ref.W_A[-1]).max() / np.abs(ref.W_A[-1]).max())
        results[tr.method] = (t, calls, err, tr.status, tr.t_stop)
    base = results["RK45"][0]
    rows = [Row("stiff", f"{label} {name} vs RK45", t, base, str(nfev),
                f"{status} t*={t_stop:.0f}, err {err:.1e}") for name, (t, nfev, err, status, t_stop) in results.items()]
    auto_t, (auto, calls) = timed(lambda: _run(p, W, "auto", None, kw), 1 if quick else 3)
    rows.append(Row("stiff", f"{label} auto → {auto.method} vs RK45", auto_t, base, str(calls), auto.path))
    return rows, results


def run(quick: bool) -> tuple[list[Row], dict]:
    small = stiff_problem(d=12, r=4, m=4)
    big = stiff_problem(d=2048, r=8, m=8)
    rows, out = [], {}
    for label, p, path in (("κ_C=%.0f d=12 r=m=4 (full path)" % data_condition(small), small, "full"),
                           ("κ_C=%.0f d=2048 r=m=8 (reduced path)" % data_condition(big), big, "reduced")):
        r, res = _case(label, p, path, quick)
        rows += r
        out[label] = res
    return rows, out
