r"""A reference trajectory read at the same times by many runs: each time read once.

C10 compares 24 SGD runs with the flow on one snapshot grid ($t = 0, 0.1, \dots$), so
`tracking_gaps` asks the flow's dense output for $W(t)$ at the same 101 times 24 times; each
read rebuilds a step's interpolant. `Remembered` answers a repeated time from a table: the
same arrays the first read returned, so the gaps, and results.json, are unchanged to the bit.
"""

from __future__ import annotations

import numpy as np

from cdyn.numerics import Trajectory


class Remembered:
    """The parts of a `Trajectory` that `tracking_gaps` reads (`t`, `terms`, `at`), with `at` memoised."""

    def __init__(self, traj: Trajectory):
        self.traj, self.t, self.terms = traj, traj.t, traj.terms
        self._seen: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        hit = self._seen.get(t)
        if hit is None:
            a, b = self.traj.at(t)
            a.setflags(write=False)  # shared by every later read: nobody may change it
            b.setflags(write=False)
            hit = self._seen[t] = (a, b)
        return hit


__all__ = ["Remembered"]
