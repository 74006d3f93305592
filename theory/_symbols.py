"""The symbols of THEORY §1–2: dimensions, data-model matrices, random vectors, weights.

Every other module of `theory` builds on these objects, so that a `W_A` in one
expression is the same SymPy atom as a `W_A` in another.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol

# Dimensions: d_A, d_B input dims, r signal dim, k_A, k_B noise dims, m feature dim.
d_A, d_B, r, k_A, k_B, m = sp.symbols("d_A d_B r k_A k_B m", integer=True, positive=True)

# Encoders.
W_A = MatrixSymbol("W_A", m, d_A)
W_B = MatrixSymbol("W_B", m, d_B)

# Data model x_A = A z + A_xi xi_A, x_B = B z + B_xi xi_B.
A = MatrixSymbol("A", d_A, r)
B = MatrixSymbol("B", d_B, r)
A_xi = MatrixSymbol("A_xi", d_A, k_A)
B_xi = MatrixSymbol("B_xi", d_B, k_B)
Sigma_z = MatrixSymbol("Sigma_z", r, r)

# Moments of the views (named so the population loss reads as in THEORY §2).
Sigma_A = MatrixSymbol("Sigma_A", d_A, d_A)
Sigma_B = MatrixSymbol("Sigma_B", d_B, d_B)
C = MatrixSymbol("C", d_A, d_B)

# Random vectors. A negative pair (x_A, x~_B) uses an independent copy of the data.
z = MatrixSymbol("z", r, 1)
z_neg = MatrixSymbol(r"\tilde{z}", r, 1)
xi_A = MatrixSymbol("xi_A", k_A, 1)
xi_B = MatrixSymbol("xi_B", k_B, 1)
xi_B_neg = MatrixSymbol(r"\tilde{xi}_B", k_B, 1)
x_A = MatrixSymbol("x_A", d_A, 1)
x_B = MatrixSymbol("x_B", d_B, 1)
x_B_neg = MatrixSymbol(r"\tilde{x}_B", d_B, 1)

# Scalar weights: lambda for negative pairs, mu for weight decay.
lam = sp.Symbol("lambda", nonnegative=True)
mu = sp.Symbol("mu", nonnegative=True)

#: Matrices known to be symmetric (used to fold `S.T` into `S` after differentiation).
SYMMETRIC = (Sigma_z, Sigma_A, Sigma_B)

#: Each view as a function of the base randomness (THEORY §1).
DATA_MODEL = {
    x_A: A * z + A_xi * xi_A,
    x_B: B * z + B_xi * xi_B,
    x_B_neg: B * z_neg + B_xi * xi_B_neg,
}

#: Second moments E[u vᵀ] of base random vectors that share a source.
BASE_MOMENTS = {
    (z, z): Sigma_z,
    (z_neg, z_neg): Sigma_z,
    (xi_A, xi_A): sp.Identity(k_A),
    (xi_B, xi_B): sp.Identity(k_B),
    (xi_B_neg, xi_B_neg): sp.Identity(k_B),
}

#: Independence groups: vectors in different groups are independent and mean zero.
INDEPENDENCE_GROUP = {
    z: "z", z_neg: "z~", xi_A: "xi_A", xi_B: "xi_B", xi_B_neg: "xi~_B",
    x_A: "pair", x_B: "pair", x_B_neg: "negative",
}

#: Names of the problem data that a compiled expression may read.
DATA_SYMBOLS = (A, B, A_xi, B_xi, Sigma_z, Sigma_A, Sigma_B, C)
STATE = (W_A, W_B)
SCALARS = (lam, mu)
