"""The symbolic layer (SymPy only): data model, loss terms, expectation, gradients, flow.

`theory` imports no NumPy; `numerics` compiles what is derived here.
"""

from . import symbols
from ._calculus import FUNCTIONS, UnsupportedTerm, check_supported, frobenius, frobenius_sq, gradient, normalize
from ._conserved import Q, dQ_dt
from ._derivations import derivation_section, render_derivations
from ._explicit import entries, explicit
from ._expectation import expectation, named_view_moments, view_moments
from ._flow import GradientFlow, gradient_flow
from ._gradient import fold_symmetric, matrix_gradient
from ._latex import latex, unicode
from ._terms import (
    LossTerm, available_terms, canonical_trace, get_term, per_sample_neg, per_sample_pos,
    register_term, unregister_term,
)
# The decoupled model, its closed forms and the CCA limit (THEORY §5-§6); importing the
# derivations module registers their sections of derivations/.
from . import _closed_forms as closed_forms, _decoupled as decoupled  # noqa: E402
from . import _decoupled_derivations  # noqa: E402, F401

__all__ = [
    "GradientFlow", "LossTerm", "Q", "available_terms", "canonical_trace", "entries", "explicit", "dQ_dt", "derivation_section", "render_derivations", "expectation",
    "fold_symmetric", "get_term", "gradient_flow", "latex", "matrix_gradient", "named_view_moments",
    "per_sample_neg", "per_sample_pos", "register_term", "symbols", "unicode", "unregister_term", "view_moments",
    "FUNCTIONS", "UnsupportedTerm", "check_supported", "frobenius", "frobenius_sq", "gradient", "normalize",
]
__all__ += ["closed_forms", "decoupled"]

# Performance forms (issue 5): the factored flow, the exact reduced ODE, the Jacobian operator.
from ._jacobian import Jacobian, JacobianTerm, NotPolynomial, jacobian  # noqa: E402
from ._reduced import NotReducible, ReducedFlow, reduced_flow  # noqa: E402
from ._structured import StructuredFlow, structured_flow  # noqa: E402

__all__ += ["Jacobian", "JacobianTerm", "NotPolynomial", "NotReducible", "ReducedFlow", "StructuredFlow", "jacobian", "reduced_flow",
            "structured_flow"]

# Mini-batch estimators with in-batch negatives (issue 4); importing registers their section.
from . import _batch as batch  # noqa: E402
from ._batch import BatchTerm, batch_term  # noqa: E402

__all__ += ["BatchTerm", "batch", "batch_term"]

# SGD on the structured form (issue 12): the batch gradients through the features W Xᵀ.
from ._batch_structured import FeatureBatch, NotFeatureForm, feature_batch  # noqa: E402

__all__ += ["FeatureBatch", "NotFeatureForm", "feature_batch"]

# Paper and notebook output (issue 9): display blocks, complete documents, notebook printing.
from ._derivations import derivations_document  # noqa: E402
from ._latex_document import PACKAGES as LATEX_PACKAGES, display, document, notebook_printing  # noqa: E402

__all__ += ["LATEX_PACKAGES", "derivations_document", "display", "document", "notebook_printing"]
