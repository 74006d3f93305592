"""The symbolic layer (SymPy only): data model, loss terms, expectation, gradients, flow.

`theory` imports no NumPy; `numerics` compiles what is derived here.
"""

from . import _symbols as symbols
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

__all__ = [
    "GradientFlow", "LossTerm", "Q", "available_terms", "canonical_trace", "entries", "explicit", "dQ_dt", "derivation_section", "render_derivations", "expectation",
    "fold_symmetric", "get_term", "gradient_flow", "latex", "matrix_gradient", "named_view_moments",
    "per_sample_neg", "per_sample_pos", "register_term", "symbols", "unicode", "unregister_term", "view_moments",
]
