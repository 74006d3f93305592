"""What the code generator produces (`CompiledExpr`), the names it gives inputs, and the
few runtime helpers generated code calls besides NumPy."""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp


@dataclass(frozen=True)
class CompiledExpr:
    """A NumPy function of named arrays/scalars, generated from SymPy expressions.

    `flops` estimates one call (the per-call part when `varying` is set; `setup_flops`
    is the one-off part), `n_ops` counts the NumPy operations one call executes.
    """

    fn: Callable[..., tuple]
    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    varying: tuple[str, ...] | None = None
    factory: Callable[..., Callable[..., tuple]] | None = None
    flops: float = 0.0
    setup_flops: float = 0.0
    n_ops: int = 0

    def __call__(self, **env: object) -> tuple:
        return self.fn(**env)

    @property
    def constants(self) -> tuple[str, ...]:
        return tuple(k for k in self.inputs if self.varying is None or k not in self.varying)

    def bind(self, **consts: object) -> Callable[..., tuple]:
        """Run the setup once; return `f(*varying)` (positional, in `varying` order)."""
        if self.factory is None:
            raise TypeError("bind: compile with varying=... to get a bindable function")
        return self.factory(**{k: consts[k] for k in self.constants})


#: SymPy functions the generated code evaluates, by NumPy name (see `theory.FUNCTIONS`).
_NUMPY_FUNCTIONS = {sp.log: "log", sp.exp: "exp", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.sinh: "sinh",
                    sp.cosh: "cosh", sp.tanh: "tanh", sp.atan: "arctan"}


def _logdet(X: np.ndarray) -> float:
    sign, logabs = np.linalg.slogdet(X)
    return float(logabs) if sign > 0 else float("nan")


def _ident(name: str) -> str:
    """A Python identifier for a SymPy name (`lambda` is a keyword, so it becomes `lam`)."""
    out = "".join(c if c.isalnum() else "_" for c in name.replace("\\", "")).strip("_")
    return out + "_" if keyword.iskeyword(out) and out != "lambda" else ("lam" if out == "lambda" else out)


def _code_name(name: str) -> str:
    """The generated code's identifier for an input: prefixed, so no input can shadow `np`,
    a temporary `t0`, or start with a digit, and distinct for distinct input names."""
    return f"in_{name}"
