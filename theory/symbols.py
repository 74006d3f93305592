"""The public symbols of THEORY §1–2 (`from theory.symbols import W_A, Sigma_A, ...`).

The same SymPy atoms as `theory._symbols`, which every module of `theory` builds on.
"""

from ._symbols import (  # noqa: F401
    A, A_xi, B, B_xi, BASE_MOMENTS, C, DATA_MODEL, DATA_SYMBOLS, INDEPENDENCE_GROUP, SCALARS, STATE, SYMMETRIC,
    Sigma_A, Sigma_B, Sigma_z, W_A, W_B, d_A, d_B, k_A, k_B, lam, m, mu, r, x_A, x_B, x_B_neg, xi_A, xi_B,
    xi_B_neg, z, z_neg,
)
