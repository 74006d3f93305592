r"""A claim of THEORY §7 as an object: statement, hypotheses, instance strategy, check.

An *instance* is a JSON-able `dict` (spectra, seeds, init, horizon, ...) so that a
counterexample can be saved and replayed exactly. `check(instance)` returns a
`CheckResult` whose `margin` is how far the claim is from failing on that instance:
`margin >= 0` means the claim holds there, `margin < 0` is a counterexample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis.strategies import SearchStrategy

from ._space import Space

Instance = dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: `margin >= 0` holds; `details` are JSON-able diagnostics."""

    margin: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return self.margin >= 0


@dataclass(frozen=True)
class Claim:
    """One machine-checkable claim.

    `expected=False` marks a deliberately mis-stated claim that the engine must
    *falsify* (find and shrink a counterexample); a checker that confirms everything
    is broken, and these claims prove ours is not.
    """

    id: str
    title: str
    statement: str
    latex: str
    hypotheses: tuple[str, ...]
    strategy: Callable[[], SearchStrategy[Instance]]
    check: Callable[[Instance], CheckResult]
    expected: bool = True
    #: Examples at the default budget (None: the engine's default).
    examples: int | None = None
    #: What the margin measures, in words (shown in the report).
    margin_meaning: str = ""
    #: Aggregate over every example's `details` (e.g. the worst peak-time error), for the report.
    summarize: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    #: At most this many extra checks while shrinking a counterexample (bounds the run time).
    shrink_budget: int = 200
    #: The continuous box the instances are built from (`claims._space.Space`). With it, the engine
    #: runs a second, local search over the box after Hypothesis (None: Hypothesis only).
    space: Space | None = None
    #: Cap on the second stage's checks for this claim (None: the engine's `LOCAL_BUDGET`).
    local_budget: int | None = None
