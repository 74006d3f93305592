r"""The certificate of `_certify` without forming the Hessian: for states of thousands of entries.

The dense test eigen-decomposes $J = -\nabla^2 L$ ($n^2$ numbers, $O(n^3)$). Here $J$ is only
applied to vectors:

* **Hessian-vector products** $Jv$ from the directional derivative derived in `theory`
  ($J[V] = \tfrac{d}{d\varepsilon}F(W + \varepsilon V)$, compiled on the *structured* form, so
  no $d\times d$ moment is formed), exact up to rounding; for a flow that is not polynomial
  (a user term with an inverse), central differences of the flow along $v$, whose error is
  estimated by Richardson's comparison of steps $h$ and $2h$ and added to the rounding level $\tau$.
* **Symmetries** are projected out: $P$ is the orthogonal projector onto the complement of the
  known flat directions (`_projector`: the group orbit's tangents by a Sylvester solve in the singular
  bases of $W_A$, $W_B$, never as $m^2$ dense columns; moves of a row along $\ker\Sigma$ as
  $V \mapsto V R R^\top$ with $R$ an orthonormal basis of $\mathrm{range}\,\Sigma$). The operator
  $B = -PJP + c\,(I - P)$ has the spectrum of $-J$ on the complement and puts the flat directions at
  $c > \|J\|$, out of the way.
* **Smallest eigenvalues** of $B$ by Lanczos (`eigsh`, deterministic start vector). A Ritz
  vector $x \perp$ symmetries with Rayleigh quotient $x^\top B x < -\tau$ *proves* an unstable
  direction (min-max), whatever the convergence. Otherwise the smallest Ritz value $\theta$ with
  residual $\|r\|$ gives $\gamma = \theta - \|r\|$, trusted as a lower bound of the curvature on
  the complement (Lanczos from a generic start finds the bottom of the spectrum). On THEORY §8's
  subspace with a `neg` term the same pair comes from a Davidson method preconditioned by a Kronecker
  model of $B$ (`_certify_precond`): Ritz pairs of $B$ itself, residuals from products of $B$.
* **Distance**: the Newton step $\delta = B^{-1}Pf$ by conjugate gradients ($B \succ 0$ there);
  $\|y - y^*\| \le \|\delta\| + \|r_{CG}\|/\gamma$ to first order, and never more than $\|Pf\|/\gamma$
  (CG preconditioned by the same Kronecker model where Davidson ran; $r_{CG}$ is always $B\delta - Pf$).

For terms whose symmetries are not known in advance (user terms) the candidates ($GL(m)$, its
$O(m)$ part, moves along $\ker\Sigma$) are kept only if the loss, evaluated along their orbits, is
constant (`symmetries`). A flat Ritz direction ($|\theta| \le \tau$) left after projecting them
out leaves the stop *undecided*: the run ends `uncertified`, never `converged`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, NamedTuple

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg, eigsh

from cdyn import theory
from cdyn.theory._chains import chains
from cdyn.theory._content import compact

from ._certificate import MAX_MATRIX_FREE, Certificate, Certifier, symmetries, unstable, unverified
from ._certify_precond import davidson_smallest, kronecker_preconditioner
from ._compile import compile_exprs
from ._problem import Problem
from ._projector import Projector
from ._structured import noise_kinds, values_for

EPS = float(np.finfo(float).eps)
#: Implicit restarts of Lanczos (each at most `NCV` Hessian-vector products): a bounded certificate.
MAX_RESTARTS = 500
#: Lanczos basis size. The bottom of the spectrum is clustered (THEORY §8's noise block λσ²H_B ⊗ I): at
#: converged states (`benchmarks/peers.py` instances) ARPACK's default of 20 took 1672 products at
#: d = 4096, r = m = 32, 902 at (1024, 16), 552 at (512, 8); 80 takes 582, 382, 142. Its extra
#: orthogonalisation, O(n·NCV) a step, is small beside a Hessian-vector product.
NCV = 80
#: The flat directions are put at c = SHIFT·‖J‖ (‖J‖ estimated to 1e-3), above every curved eigenvalue;
#: further up only widens the spectrum Lanczos and CG must span (CG: 163 products with 2‖J‖, 151 with 1.1‖J‖).
SHIFT = 1.1


@lru_cache(maxsize=32)
def _hvp_code(terms: tuple, dims_key: tuple, noise: tuple[str, str]):
    names = tuple(t.name for t in terms)
    flow = theory.structured_flow(names, *noise)
    S = theory.symbols
    jac = theory.jacobian({"dW_A": flow.dW_A, "dW_B": flow.dW_B}, (S.W_A, S.W_B), S.SYMMETRIC)
    vA, vB = jac.directions()
    # Compact form (`theory._content`): pos + neg at m = 32, d = 64, 73 NumPy operations a product -> 44.
    out = {k: compact(chains(jac.directional[w], S.SYMMETRIC), jac.directional[w].shape)
           for k, w in (("JA", "dW_A"), ("JB", "dW_B"))}
    return compile_exprs(out, dict(dims_key), "hvp", varying=("W_A", "W_B", vA.name, vB.name), symmetric=S.SYMMETRIC)


def hvp(p: Problem, names: tuple[str, ...], W_A: np.ndarray, W_B: np.ndarray,
        field: Callable[[float, np.ndarray], np.ndarray]) -> tuple[Callable[[np.ndarray], np.ndarray], float, str]:
    r"""`(v -> Jv, error level relative to |J|, how)` at $(W_A, W_B)$ on the flat state."""
    m, dA, dB = p.m, p.d_A, p.d_B
    n = m * dA
    y = np.concatenate([W_A.ravel(), W_B.ravel()])
    try:
        objs = tuple(theory.get_term(t) for t in names)
        dims_key = tuple(sorted(p.dims.items(), key=lambda kv: kv[0].name))
        code = _hvp_code(objs, dims_key, noise_kinds(p)[0])
        fn = code.bind(**values_for(p, code.constants))

        def apply(v: np.ndarray) -> np.ndarray:
            ja, jb = fn(W_A, W_B, v[:n].reshape(m, dA), v[n:].reshape(m, dB))
            return np.concatenate([np.broadcast_to(ja, (m, dA)).ravel(), np.broadcast_to(jb, (m, dB)).ravel()])

        return apply, _defect(apply, y.size), "analytic"
    except theory.NotPolynomial:
        pass
    # h balances truncation, O(h² f'''), against rounding, O(ε‖f‖/h), at the state's scale.
    h = np.cbrt(EPS) * max(1.0, float(np.abs(y).max()))

    def fd(v: np.ndarray, step: float = h) -> np.ndarray:
        return (field(0.0, y + step * v) - field(0.0, y - step * v)) / (2 * step)

    rng = np.random.default_rng(0)
    err, size = 0.0, 0.0
    for _ in range(3):  # Richardson: J_h v - J_2h v ≈ -3·(truncation error of J_h v)
        v = rng.standard_normal(y.size)
        v /= np.linalg.norm(v)
        a, b = fd(v), fd(v, 2 * h)
        err, size = max(err, float(np.linalg.norm(a - b))), max(size, float(np.linalg.norm(a)))
    return fd, max(_defect(fd, y.size), 10.0 * err / max(size, 1e-300)), "central differences"


def _defect(J: Callable[[np.ndarray], np.ndarray], n: int) -> float:
    r"""The rounding level of $v \mapsto Jv$ relative to $\|Jv\|$, measured: $J$ is linear, so
    $\|J(u+v) - Ju - Jv\|$ is rounding alone (10× its largest value on three random pairs, and at
    least $10\sqrt n\,\varepsilon$)."""
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(3):
        u, v = rng.standard_normal(n), rng.standard_normal(n)
        u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
        Ju, Jv = J(u), J(v)
        size = max(float(np.linalg.norm(Ju)), float(np.linalg.norm(Jv)), 1e-300)
        worst = max(worst, float(np.linalg.norm(J(u + v) - Ju - Jv)) / size)
    return max(10.0 * worst, 10.0 * np.sqrt(n) * EPS)


def _range_basis(F: np.ndarray) -> np.ndarray:
    """Orthonormal basis of range(F) (rank relative to the largest singular value)."""
    if F.shape[1] == 0:
        return F
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    return U[:, s > 1e-10 * s.max(initial=0.0)] if s.size and s.max() > 0 else U[:, :0]


def sigma_ranges(p: Problem) -> tuple[np.ndarray | None, np.ndarray | None]:
    r"""Orthonormal bases of range $\Sigma_A$, range $\Sigma_B$ from the thin factors (None: all of $\mathbb R^d$)."""
    (ka, kb), _ = noise_kinds(p)
    w, V = np.linalg.eigh(p.Sigma_z)
    root = V * np.sqrt(np.clip(w, 0.0, None))
    out = []
    for kind, F, X in ((ka, p.A, p.A_xi), (kb, p.B, p.B_xi)):
        if kind == "isotropic":
            out.append(None)
            continue
        R = _range_basis(np.hstack([F @ root, X]) if kind == "thin" else F @ root)
        out.append(None if R.shape[1] == R.shape[0] else R)
    return out[0], out[1]


def smallest(op: Callable[[np.ndarray], np.ndarray], n: int, k: int, norm: float,
             tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k smallest eigenpairs of the symmetric operator `op` (Lanczos), with their residual norms."""
    if n <= 50:  # small enough to form: exact eigenpairs, no iteration
        M = np.column_stack([op(e) for e in np.eye(n)])
        w, V = np.linalg.eigh((M + M.T) / 2)
        w, V = w[:k], V[:, :k]
        return w, V, np.array([np.linalg.norm(op(V[:, i]) - w[i] * V[:, i]) for i in range(w.size)])
    A = LinearOperator((n, n), matvec=op, dtype=float)
    v0 = np.random.default_rng(1).standard_normal(n)  # deterministic: same state, same certificate
    try:
        w, V = eigsh(A, k=k, which="SA", v0=v0, tol=tol, maxiter=MAX_RESTARTS, ncv=min(NCV, n))
    except Exception as err:  # ArpackNoConvergence: keep what converged
        w, V = getattr(err, "eigenvalues", np.zeros(0)), getattr(err, "eigenvectors", np.zeros((n, 0)))
    order = np.argsort(w)
    w, V = w[order], V[:, order]
    res = np.array([np.linalg.norm(op(V[:, i]) - w[i] * V[:, i]) for i in range(w.size)])
    return w, V, res


def norm_estimate(op: Callable[[np.ndarray], np.ndarray], n: int) -> float:
    """$\\|J\\|_2$ to a few digits (largest-magnitude Ritz value)."""
    if n <= 50:
        return float(np.linalg.norm(np.column_stack([op(e) for e in np.eye(n)]), 2))
    A = LinearOperator((n, n), matvec=op, dtype=float)
    try:
        w = eigsh(A, k=1, which="LM", v0=np.random.default_rng(2).standard_normal(n), tol=1e-3,
                  return_eigenvectors=False, maxiter=MAX_RESTARTS)
    except Exception as err:  # ArpackNoConvergence: a power-iteration bound from the start vector instead
        w = getattr(err, "eigenvalues", np.zeros(0))
        if not np.size(w):
            v = np.random.default_rng(2).standard_normal(n)
            for _ in range(50):
                v = op(v / np.linalg.norm(v))
            w = np.array([np.linalg.norm(v)])
    return float(np.abs(w).max())


def conjugate_gradient_distance(op: Callable[[np.ndarray], np.ndarray], n: int, rhs: np.ndarray,
                                gamma: float, precond: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    r"""$\|\delta\| + \|r\|/\gamma$ for $B\delta = Pf$ solved by CG (preconditioned by `precond`, SPD):
    an upper bound of $\|B^{-1}Pf\|$, $r$ the true residual $B\delta - Pf$ whatever the preconditioner."""
    A = LinearOperator((n, n), matvec=op, dtype=float)
    M = None if precond is None else LinearOperator((n, n), matvec=precond, dtype=float)
    delta, _ = cg(A, rhs, rtol=1e-8, atol=0.0, maxiter=min(2 * n, 2000), M=M)  # the bound uses the residual
    r = float(np.linalg.norm(op(delta) - rhs))
    return min(float(np.linalg.norm(delta)) + r / gamma, float(np.linalg.norm(rhs)) / gamma)


def invariant_subspace(p: Problem, names: tuple[str, ...], W_A: np.ndarray, W_B: np.ndarray):
    r"""Row bases $Q_A$ ($d_A\times(r+q)$), $Q_B$ of the subspace THEORY §8 keeps the flow in, or None.

    With isotropic or no noise and terms among pos, neg, wd, the rows of $W_A$ stay in
    $\mathrm{range}(A) + \mathrm{rows}(W_A)$. A perturbation $E$ with rows orthogonal to it has
    $E\Sigma_A = \sigma_A^2 E$, $EC = 0$ and $EW_A^\top = 0$, so $J[E] = -(\lambda\sigma_A^2 H_B + \mu)E$ with
    $H_B = W_B\Sigma_B W_B^\top \succeq 0$: never unstable, and $f$ has no part there. The certificate
    then only needs $J$ on the subspace, of dimension $m(r + q)$ whatever $d$ is."""
    if not set(names) <= {"pos", "neg", "wd"} or any(k not in ("isotropic", "none") for k in noise_kinds(p)[0]):
        return None
    return tuple(_range_basis(np.hstack([F, X.T])) for F, X in ((p.A, W_A), (p.B, W_B)))


class Curvature(NamedTuple):
    """$B = -PJP + c(I-P)$ of the module docstring at one state, with what the certificate reads off it."""
    p: Problem  # the problem B belongs to: THEORY §8's subspace problem when `sub` is not None
    sub: tuple[np.ndarray, np.ndarray] | None
    Z_A: np.ndarray
    Z_B: np.ndarray
    f: np.ndarray  # the flow at (Z_A, Z_B)
    P: Projector
    B: Callable[[np.ndarray], np.ndarray]
    norm: float  # ‖PJP‖, to a few digits
    tau: float  # the rounding level of B
    c: float
    how: str  # how Jv is computed


def curvature(cert: Certifier, W_A: np.ndarray, W_B: np.ndarray) -> Curvature:
    """The operator B at $(W_A, W_B)$, on THEORY §8's invariant subspace when there is one."""
    from ._flowfn import flow_function

    p, names = cert._p, cert.names
    sub = invariant_subspace(p, names, W_A, W_B)
    if sub is not None:
        # Coordinates Z = W Q on the invariant subspace (Q has orthonormal columns: an isometry). Range(Q)
        # holds range(A) and is invariant under Σ_A = AΣ_zAᵀ + σ²I, so the flow restricted to it *is* the
        # flow of the problem with data QᵀA, QᵀB and the same σ: J costs O(m(r+q)²) there instead of O(md).
        QA, QB = sub
        (ka, kb), (sa, sb) = noise_kinds(p)
        p = p.replace(A=QA.T @ p.A, B=QB.T @ p.B, A_xi=sa if ka == "isotropic" else None,
                      B_xi=sb if kb == "isotropic" else None)
        W_A, W_B = W_A @ QA, W_B @ QB
    fs = flow_function(p, names, path="structured")
    J, rel, how = hvp(p, names, W_A, W_B, fs.vector_field())
    ranges = sigma_ranges(p)
    dA, dB = fs(W_A, W_B)
    f = np.concatenate([np.asarray(dA).ravel(), np.asarray(dB).ravel()])
    if set(names) <= {"pos", "neg"}:
        group, ker = "GL", True
    elif set(names) <= {"pos", "neg", "wd"}:
        group, ker = "O", False
    else:
        group, ker = symmetries(cert.fn.loss, W_A, W_B, ranges, ranges=True)
    P = Projector(W_A, W_B, ranges if ker else (None, None), group)
    norm = norm_estimate(lambda v: P(J(P(v))), f.size)
    c = SHIFT * norm if norm > 0 else 1.0

    def B(v: np.ndarray) -> np.ndarray:
        pv = P(v)
        return -P(J(pv)) + c * (v - pv)

    return Curvature(p, sub, W_A, W_B, f, P, B, norm, rel * norm, c, how)


def matrix_free_certificate(cert: Certifier, t: float, W_A: np.ndarray, W_B: np.ndarray) -> Certificate:
    """The test of the module docstring with Hessian-vector products only (`_certify_mf`)."""
    if cert.size > MAX_MATRIX_FREE:
        return Certificate(False, True, np.nan, np.nan, np.nan,
                           f"uncertified at t={t:.4g}: a state of {cert.size} entries is beyond the matrix-free "
                           f"certificate's limit of {MAX_MATRIX_FREE}", decided=False)
    k = curvature(cert, W_A, W_B)
    B, P, f, n, tau, sub = k.B, k.P, k.f, k.f.size, k.tau, k.sub
    y = np.concatenate([k.Z_A.ravel(), k.Z_B.ravel()])
    # One Ritz pair: its sign decides stability, its size γ (more would stall on degenerate eigenvalues, e.g.
    # the noise block -λσ²H_B ⊗ I of THEORY §8, of multiplicity d - r, on the full state). On the subspace: Davidson
    # with `_certify_precond`'s Kronecker model (d = 4096, r = m = 32: 35 products, Lanczos 562; its CG 7, not 152).
    T = None if sub is None or n <= 50 else kronecker_preconditioner(k.p, cert.names, k.Z_A, k.Z_B, P, k.c)
    found = None if T is None else davidson_smallest(B, T, n, 1e-6, tau)
    if found is None:
        T, solver = None, "Lanczos"
        w, V, res = smallest(B, n, 1, k.norm, tol=1e-6)
    else:
        solver = "Kronecker-preconditioned Davidson"
        w, V, res = np.array([found[0]]), found[1][:, None], np.array([found[2]])
    if not w.size:
        return Certificate(False, True, np.nan, np.nan, np.nan, f"uncertified at t={t:.4g}: Lanczos did not converge "
                           f"within {MAX_RESTARTS} restarts (a spectrum too clustered near zero)", decided=False)
    theta, r, x = float(w[0]), float(res[0]), V[:, 0]
    rayleigh = float(x @ B(x))
    if rayleigh < -tau:  # a Rayleigh quotient below zero: an unstable direction, proven
        return unstable(t, -rayleigh, tau)
    if abs(theta) <= tau + r:
        return Certificate(False, True, -theta, np.nan, np.nan, f"uncertified at t={t:.4g}: {unverified(V)}",
                           decided=False)
    gamma = theta - r
    if gamma <= tau:
        return Certificate(False, True, -theta, np.nan, np.nan, f"uncertified at t={t:.4g}: the smallest "
                           f"curvature {theta:.3g} is not resolved (residual {r:.2g}, rounding {tau:.1e})",
                           decided=False)
    dist = conjugate_gradient_distance(B, n, P(f), gamma, T)
    scale, where = float(np.linalg.norm(y)), "" if sub is None else f" on the invariant subspace of THEORY §8, {n} entries"
    if dist > cert.eq_tol * scale:
        return Certificate(False, True, -theta, gamma, dist,
                           f"stable but not yet close at t={t:.4g}: Newton distance {dist:.3g} > "
                           f"eq_tol·‖W‖ = {cert.eq_tol * scale:.3g} (γ = {gamma:.3g}; matrix-free, {k.how})")
    return Certificate(True, True, -theta, gamma, dist,
                       f"converged at t={t:.4g}, certified matrix-free ({k.how} Hessian-vector products, {solver}"
                       f"{where}): no unstable direction (smallest curvature {gamma:.2g}), Newton distance "
                       f"{dist:.3g} <= eq_tol·‖W‖ = {cert.eq_tol * scale:.3g}")
