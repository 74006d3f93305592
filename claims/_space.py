r"""A claim's continuous instance space: a box of named float parameters and a builder.

A claim that declares a `Space` gets instances **by construction** from a point of the box,

$$\theta \in \prod_j [\ell_j, h_j] \;\longmapsto\; \text{instance} = \text{build}(\theta),$$

so its hypotheses hold at *every* point of the box, not only at the points Hypothesis
draws. That is what lets the engine's second stage (`claims._local`) move a point with a
local optimiser and still check only admissible instances. A parameter may be on a log
scale: its coordinate is then $\log_{10}\theta_j$, uniform between $\log_{10}\ell_j$ and
$\log_{10}h_j$ (Hypothesis draws it that way, the optimiser moves it that way, and
`sample` estimates volumes that way).

Every instance carries its point under the key `"params"` (JSON floats), so a saved
counterexample names where in the box it lies and replays exactly: `check(instance)`
reads the built fields, never the random state that produced them.

```python
box = Space((Param("g_ratio", 1.0, 4.0), Param("w0", 1e-3, 0.1, log=True)),
            build=lambda p: {"a": [p["g_ratio"], 1.0], "init": {"w0": p["w0"]}})
box.strategy()          # a Hypothesis strategy of instances
box.instance({"g_ratio": 2.0, "w0": 0.01})
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

Instance = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """One float parameter in `[lo, hi]` (`log=True`: log-uniform, needs `lo > 0`)."""

    name: str
    lo: float
    hi: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"Param {self.name!r}: need finite lo < hi, got [{self.lo}, {self.hi}]")
        if self.log and self.lo <= 0:
            raise ValueError(f"Param {self.name!r}: a log-scale parameter needs lo > 0, got {self.lo}")

    def _ends(self) -> tuple[float, float]:
        return (math.log10(self.lo), math.log10(self.hi)) if self.log else (self.lo, self.hi)

    def from_unit(self, u: float) -> float:
        """The value at coordinate u ∈ [0, 1] (clipped into [lo, hi] against rounding)."""
        a, b = self._ends()
        x = a + min(1.0, max(0.0, float(u))) * (b - a)
        return min(self.hi, max(self.lo, 10.0**x if self.log else x))

    def to_unit(self, value: float) -> float:
        a, b = self._ends()
        x = math.log10(value) if self.log else float(value)
        return min(1.0, max(0.0, (x - a) / (b - a)))

    def strategy(self) -> st.SearchStrategy[float]:
        a, b = self._ends()
        coord = st.floats(a, b, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        if not self.log:
            return coord
        return coord.map(lambda x: min(self.hi, max(self.lo, 10.0**x)))


@dataclass(frozen=True)
class Space:
    """A box of named `Param`s and `build(params) -> instance` (hypotheses hold on all of it)."""

    params: tuple[Param, ...]
    build: Callable[[dict[str, float]], Instance]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"Space: need distinct parameter names, got {names}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def instance(self, values: dict[str, float]) -> Instance:
        """The instance at a point of the box (a point outside it is a ValueError naming the parameter)."""
        point = {}
        for p in self.params:
            if p.name not in values:
                raise ValueError(f"Space: missing parameter {p.name!r}")
            v = float(values[p.name])
            if not p.lo <= v <= p.hi:
                raise ValueError(f"Space: parameter {p.name!r} = {v!r} is outside [{p.lo}, {p.hi}]")
            point[p.name] = v
        return {**self.build(dict(point)), "params": point}

    def values(self, instance: Instance) -> dict[str, float] | None:
        """The point an instance was built from (None if it carries none)."""
        point = instance.get("params") if isinstance(instance, dict) else None
        if not isinstance(point, dict) or set(point) != set(self.names):
            return None
        return {k: float(v) for k, v in point.items()}

    def to_unit(self, values: dict[str, float]) -> np.ndarray:
        return np.array([p.to_unit(values[p.name]) for p in self.params])

    def from_unit(self, u: np.ndarray) -> dict[str, float]:
        return {p.name: p.from_unit(x) for p, x in zip(self.params, np.asarray(u, dtype=float))}

    def strategy(self) -> st.SearchStrategy[Instance]:
        """Hypothesis strategy: each parameter drawn in its own (linear or log) coordinate, then built."""
        return st.fixed_dictionaries({p.name: p.strategy() for p in self.params}).map(self.instance)

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, float]]:
        """n points uniform in the box's coordinates (log-uniform for log parameters): for volume estimates."""
        return [self.from_unit(u) for u in rng.random((n, len(self.params)))]
