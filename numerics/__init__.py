"""The numeric layer (NumPy/SciPy): compiles what `theory` derives and runs it.

Data flow: `theory` (SymPy) → `compile_exprs` → `flow_function` → `integrate` /
`gradient_descent` → `Trajectory` → metrics.
"""

from ._compile import CompiledExpr, compile_exprs
from ._flowfn import FlowFunction, flow_function
from ._gd import gradient_descent
from ._instances import (
    DEFAULT_SPECTRUM_A, DEFAULT_SPECTRUM_B, default_problem, random_init, random_orthonormal, random_problem,
)
from ._integrate import METHODS, integrate
from ._metrics import (
    canonical_correlations, conserved_Q, feature_covariance, kappa, kappa_eig, kappa_limit, rank_of, series, view_kappas,
    whitened_cross,
)
from ._problem import Problem
from ._trajectory import Trajectory

__all__ = [
    "CompiledExpr", "DEFAULT_SPECTRUM_A", "DEFAULT_SPECTRUM_B", "FlowFunction", "METHODS", "Problem", "Trajectory",
    "canonical_correlations", "compile_exprs", "conserved_Q", "default_problem", "feature_covariance",
    "flow_function", "gradient_descent", "integrate", "kappa", "kappa_eig", "kappa_limit", "random_init", "random_orthonormal",
    "random_problem", "rank_of", "series", "view_kappas", "whitened_cross",
]
