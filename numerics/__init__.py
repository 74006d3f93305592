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

# Decoupled instances, closed forms, stage detection and limit checks (THEORY §5-§7).
from ._closed import (  # noqa: E402
    PeakPrediction, carrying_capacity, dlog_kappa_closed, dlog_kappa_split_closed, kappa_law, logistic_X, peak_prediction, positive_only_X,
    saturation_time,
)
from ._decoupled import DecoupledInstance, decoupled_instance, mode_derivatives, mode_q, mode_rhs  # noqa: E402
from ._general import CanonicalInstance, balanced_init, canonical_instance, principal_angle_sin  # noqa: E402
from ._kappa_rate import dlog_kappa, dlog_kappa_total  # noqa: E402
from ._limit import EquilibriumDistance, equilibrium_distance, integrate_to_equilibrium, null_dimension  # noqa: E402
from ._stages import Stages, detect_stages, kappa_peak  # noqa: E402

__all__ += [
    "CanonicalInstance", "DecoupledInstance", "EquilibriumDistance", "PeakPrediction", "Stages", "balanced_init",
    "canonical_instance",
    "carrying_capacity", "decoupled_instance", "detect_stages", "dlog_kappa", "dlog_kappa_closed",
    "dlog_kappa_split_closed", "dlog_kappa_total",
    "equilibrium_distance", "integrate_to_equilibrium", "kappa_peak", "kappa_law", "logistic_X", "mode_derivatives", "mode_q", "mode_rhs", "null_dimension",
    "peak_prediction", "positive_only_X", "principal_angle_sin", "saturation_time",
]

# Finite-sample training (issue 4): batch estimators, mini-batch SGD, gaps to a reference run.
from ._batchfn import BatchFunction, batch_function  # noqa: E402
from ._sgd import LOSSES, SGD_PATHS, SGDTrajectory, sgd  # noqa: E402
from ._tracking import tracking_gaps  # noqa: E402

__all__ += ["BatchFunction", "LOSSES", "SGD_PATHS", "SGDTrajectory", "batch_function", "sgd", "tracking_gaps"]

# Performance (issue 5): forms of the flow, analytic Jacobian, automatic choices.
from ._autochoice import data_condition, is_stiff  # noqa: E402
from ._integrate import PATHS  # noqa: E402
from ._jacobian import DenseJacobian  # noqa: E402
from ._reduced import ReducedSystem, why_not_reducible  # noqa: E402

__all__ += ["DenseJacobian", "PATHS", "ReducedSystem", "data_condition", "is_stiff", "why_not_reducible"]

# Hardening (issue 10): resource budgets checked before allocation.
from ._budget import (  # noqa: E402
    EVALS_PER_SAMPLE, budget, check_memory, check_samples, check_steps, combine, fmt_bytes, gd_steps,
    moments_memory, parse_bytes, problem_memory, samples_memory, sgd_memory,
)

__all__ += ["EVALS_PER_SAMPLE", "budget", "check_memory", "check_samples", "check_steps", "combine", "fmt_bytes",
            "gd_steps", "moments_memory", "parse_bytes", "problem_memory", "samples_memory", "sgd_memory"]
