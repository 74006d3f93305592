"""C10 reads its flow reference through `claims._memo_ref.Remembered`: the same gaps to the bit, each time read once."""

from __future__ import annotations

import numpy as np
import pytest

from cdyn import numerics
from cdyn.claims._memo_ref import Remembered
from cdyn.numerics._sgd import sgd
from cdyn.numerics._tracking import tracking_gaps


@pytest.fixture(scope="module")
def setup():
    p = numerics.default_problem(seed=1)
    W_A, W_B = numerics.random_init(p, 1e-3, 0)
    flow = numerics.integrate(p, W_A, W_B, 2.0, rtol=1e-10, atol=1e-14, n_points=41)
    runs = [sgd(p, W_A, W_B, 0.02, 2.0, batch=16, seed=s, n_points=21) for s in range(2)]
    return p, flow, runs


def test_same_gaps_to_the_bit_and_each_time_read_once(setup, monkeypatch):
    p, flow, runs = setup
    direct = [tracking_gaps(p, r, flow) for r in runs]
    ref = Remembered(flow)
    reads = []
    real_at = type(flow).at
    monkeypatch.setattr(type(flow), "at", lambda self, t: (reads.append(t), real_at(self, t))[1])
    remembered = [tracking_gaps(p, r, ref) for r in runs]
    assert remembered == direct  # floats compared exactly
    assert len(reads) == len(set(reads)) == len(runs[0].t)  # both runs share one grid: each time read once


def test_remembered_arrays_are_the_first_read_and_read_only(setup):
    _, flow, _ = setup
    ref = Remembered(flow)
    a, b = ref.at(1.0)
    a2, b2 = flow.at(1.0)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert ref.at(1.0)[0] is a
    with pytest.raises(ValueError):
        a[0, 0] = 0.0
    assert ref.t is flow.t and ref.terms == flow.terms
