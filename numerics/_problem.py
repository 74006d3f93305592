r"""A problem instance: the data model of THEORY §1 plus $m$, $\lambda$, $\mu$.

$$x_A = A z + A_\xi \xi_A,\quad x_B = B z + B_\xi \xi_B,\qquad
  \Sigma_A = A\Sigma_z A^\top + A_\xi A_\xi^\top,\ C = A\Sigma_z B^\top .$$

The moments are evaluated from the expressions `theory.view_moments()` derives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from cdyn import theory
from cdyn.theory._structured import factored_moments

from ._compile import compile_exprs
from ._budget import check_memory, moments_memory
from ._validate import MAX_LOG10_MOMENT, as_int, as_matrix, as_psd, as_real, log10_size


@lru_cache(maxsize=256)
def _moments_code(kinds: tuple[str, str] | None, dims_key: tuple):
    r"""The compiled $(\Sigma_A, \Sigma_B, C)$ for noise `kinds` (None: factors) and dimensions `dims_key`.

    Cached: a claims run builds hundreds of problems of a few dozen shapes, and compiling
    costs milliseconds where evaluating costs microseconds. The code depends only on these keys."""
    s = theory.symbols
    if kinds is not None:  # A_ξ = σ_A I substituted symbolically: Σ_A = AΣ_zAᵀ + σ_A² I, no d³ product
        mom = factored_moments(*kinds)
        # normalised, so (σI)(σI)ᵀ becomes σ²I rather than a product of two d×d identities
        exprs = {"Sigma_A": theory.normalize(mom[s.Sigma_A]), "Sigma_B": theory.normalize(mom[s.Sigma_B]),
                 "C": theory.normalize(mom[s.C])}
    else:
        mom = theory.view_moments()
        exprs = {"Sigma_A": mom[(s.x_A, s.x_A)], "Sigma_B": mom[(s.x_B, s.x_B)], "C": mom[(s.x_A, s.x_B)]}
    return compile_exprs(exprs, dict(dims_key), "moments")


def scaled_identity(d: int, sigma: float) -> np.ndarray:
    r"""$\sigma I_d$ as a read-only $d\times d$ view of a $(2d-1)$-entry buffer: $O(d)$ memory.

    Entry $(i, j)$ reads `buf[d - 1 - i + j]`, which is $\sigma$ exactly when $i = j$. Code that
    knows the noise is isotropic (`noise_kinds`) reads $\sigma$ instead; anything else sees a
    correct $\sigma I$ array."""
    buf = np.zeros(2 * d - 1)
    buf[d - 1] = sigma
    view = np.lib.stride_tricks.as_strided(buf[d - 1:], shape=(d, d), strides=(-buf.itemsize, buf.itemsize))
    view.setflags(write=False)
    return view


def _isotropic_level(name: str, value: object, d: int) -> float | None:
    r"""$\sigma$ when `value` is a scalar $\sigma \ge 0$ or a square array equal to $\sigma I$ ($\sigma > 0$),
    else None (the noise is a factor). Checked without a $d\times d$ temporary."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a noise level (a number >= 0) or a d×k factor, got a bool")
    if isinstance(value, (int, float, np.integer, np.floating)) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return as_real(name, float(value), low=0.0)
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape == (d, d) and d and \
            value.dtype.kind in "fiu":
        s = float(value[0, 0])
        if s > 0 and np.isfinite(s) and np.all(np.diagonal(value) == s) and np.count_nonzero(value) == d:
            return s
    return None


def rank_of(X: np.ndarray, rtol: float = 1e-10) -> int:
    s = np.linalg.svd(X, compute_uv=False)
    return int(np.sum(s > rtol * (s[0] if s.size and s[0] > 0 else 1.0)))


def _check_moment_scale(mats: dict[str, np.ndarray]) -> None:
    r"""Refuse data whose moments $A\Sigma_zA^\top + A_\xi A_\xi^\top$, $A\Sigma_zB^\top$ overflow
    float64: bounded by products of Frobenius norms, computed in $\log_{10}$."""
    lg = {k: log10_size(v) for k, v in mats.items()}
    for name, factors in (("Sigma_A", ("A", "A", "Sigma_z")), ("Sigma_A", ("A_xi", "A_xi")),
                          ("Sigma_B", ("B", "B", "Sigma_z")), ("Sigma_B", ("B_xi", "B_xi")),
                          ("C", ("A", "B", "Sigma_z"))):
        bound = sum(lg[f] for f in factors)
        if bound > MAX_LOG10_MOMENT:
            worst = max(factors, key=lambda f: lg[f])
            raise ValueError(f"{worst}: entries too large (max |entry| {np.abs(mats[worst]).max():.3g}): the moment "
                             f"{name} could reach 1e{bound:.0f}, beyond float64; rescale the data")


#: Input names the problem supplies itself; a user weight may not take one of them.
_RESERVED = frozenset({"lam", "mu", "sigma_A", "sigma_B", "A", "B", "A_xi", "B_xi", "Sigma_z", "Sigma_A", "Sigma_B",
                       "C", "W_A", "W_B"})


@dataclass(frozen=True, eq=False)
class Problem:
    """Data matrices (A: d_A×r, B: d_B×r, A_xi: d_A×k_A, B_xi: d_B×k_B, Sigma_z: r×r), m, λ, μ."""

    A: np.ndarray
    B: np.ndarray
    A_xi: np.ndarray | None = None
    B_xi: np.ndarray | None = None
    Sigma_z: np.ndarray | None = None
    m: int = 1
    lam: float = 1.0
    mu: float = 0.0
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        A = as_matrix("A", self.A)
        B = as_matrix("B", self.B)
        if B.shape[1] != A.shape[1]:
            # Either may be the wrong one: both read r, the dimension of the shared signal z.
            raise ValueError(f"B: has {B.shape[1]} columns but A has {A.shape[1]}; A and B must both have r "
                             "columns, one per coordinate of the shared signal z (either may be the wrong one)")
        r = A.shape[1]
        # Isotropic noise (a scalar σ, or σI given densely) is kept as σ and an O(d) view of σI.
        levels = {}
        noise = []
        for name, value, d in (("A_xi", self.A_xi, A.shape[0]), ("B_xi", self.B_xi, B.shape[0])):
            s = None if value is None else _isotropic_level(name, value, d)
            levels[name] = s
            if value is None or s == 0.0:
                noise.append(np.zeros((d, 0)))
            elif s is not None:
                noise.append(scaled_identity(d, s))
            else:
                noise.append(as_matrix(name, value, rows=d))
        A_xi, B_xi = noise
        Sz = np.eye(r) if self.Sigma_z is None else as_psd("Sigma_z", self.Sigma_z, r)
        if not isinstance(self.params, dict):
            raise TypeError("params: expected a dict of scalar weights")
        params = {str(k): as_real(f"params.{k}", v) for k, v in self.params.items()}
        for k in params:
            if k in _RESERVED:
                # A params entry would shadow the compiled value while p.lam, kappa_limit, ... kept theirs.
                raise ValueError(f"params.{k}: {k!r} is set by the problem itself "
                                 f"({'pass lam=/mu= to Problem' if k in ('lam', 'mu') else 'a data name'}), "
                                 "not by params")
        if A.shape[0] == 0 or A.shape[1] == 0:
            raise ValueError(f"A: needs at least one row and one column (a signal dimension r >= 1), got {A.shape}")
        if B.shape[0] == 0:
            raise ValueError(f"B: needs at least one row, got {B.shape}")
        # (σI's size bound: its one entry σ over d entries, as log10_size computes it for the dense form)
        iso = {k: (np.full((1, A_xi.shape[0] if k == "A_xi" else B_xi.shape[0]), v) if v else np.zeros((0, 0)))
               for k, v in levels.items() if v is not None}
        _check_moment_scale({"A": A, "B": B, "A_xi": iso.get("A_xi", A_xi), "B_xi": iso.get("B_xi", B_xi),
                             "Sigma_z": Sz})
        for name, value in (("A", A), ("B", B), ("A_xi", A_xi), ("B_xi", B_xi), ("Sigma_z", Sz)):
            if value.flags.writeable:
                value.setflags(write=False)
            object.__setattr__(self, name, value)
        # noise kinds and levels, read by numerics._structured.noise_kinds
        self.__dict__["_cdyn_levels"] = (levels["A_xi"], levels["B_xi"])
        object.__setattr__(self, "m", as_int("m", self.m))
        object.__setattr__(self, "lam", as_real("lam", self.lam, low=0.0))
        object.__setattr__(self, "mu", as_real("mu", self.mu, low=0.0))
        object.__setattr__(self, "params", params)

    # -- shapes ---------------------------------------------------------------------------
    @property
    def d_A(self) -> int:
        return self.A.shape[0]

    @property
    def d_B(self) -> int:
        return self.B.shape[0]

    @property
    def r(self) -> int:
        return self.A.shape[1]

    @property
    def dims(self) -> dict:
        """Values of theory's dimension symbols."""
        s = theory.symbols
        return {s.d_A: self.d_A, s.d_B: self.d_B, s.r: self.r, s.m: self.m,
                s.k_A: max(self.A_xi.shape[1], 1), s.k_B: max(self.B_xi.shape[1], 1)}

    # -- moments (derived in theory) ------------------------------------------------------
    @cached_property
    def _moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        check_memory(moments_memory(self.d_A, self.d_B), "the dense moments Σ_A, Σ_B, C")
        sa, sb = self.__dict__["_cdyn_levels"]
        kinds = tuple("isotropic" if v else "thin" for v in (sa, sb)) if sa or sb else None
        fn = _moments_code(kinds, tuple(sorted(self.dims.items(), key=lambda kv: kv[0].name)))
        A_xi = self.A_xi if self.A_xi.shape[1] else np.zeros((self.d_A, 1))
        B_xi = self.B_xi if self.B_xi.shape[1] else np.zeros((self.d_B, 1))
        env = {"A": self.A, "B": self.B, "A_xi": A_xi, "B_xi": B_xi, "Sigma_z": self.Sigma_z,
               "sigma_A": sa or 0.0, "sigma_B": sb or 0.0}
        SA, SB, C = fn(**{k: env[k] for k in fn.inputs})
        SA, SB = np.broadcast_to(SA, (self.d_A, self.d_A)), np.broadcast_to(SB, (self.d_B, self.d_B))
        return (SA + SA.T) / 2, (SB + SB.T) / 2, np.broadcast_to(C, (self.d_A, self.d_B))

    @property
    def Sigma_A(self) -> np.ndarray:
        return self._moments[0]

    @property
    def Sigma_B(self) -> np.ndarray:
        return self._moments[1]

    @property
    def C(self) -> np.ndarray:
        return self._moments[2]

    @cached_property
    def rank_C(self) -> int:
        """Numerical rank of $C$ (so $k = \\min(m, \\operatorname{rank} C)$ costs one SVD per problem).

        Above 2¹⁶ entries, from the singular values of the $r\\times r$ core $R_A\\Sigma_z R_B^\\top$
        ($A = Q_AR_A$), which are those of $C = A\\Sigma_zB^\\top$: no $d_A\\times d_B$ SVD."""
        if self.d_A * self.d_B <= 2**16:
            return rank_of(self.C)
        R_A = np.linalg.qr(self.A, mode="r") if self.d_A >= self.r else self.A
        R_B = np.linalg.qr(self.B, mode="r") if self.d_B >= self.r else self.B
        return rank_of(R_A @ self.Sigma_z @ R_B.T)

    def values(self) -> dict[str, object]:
        """Every named input a compiled theory expression may read."""
        return {"A": self.A, "B": self.B, "A_xi": self.A_xi, "B_xi": self.B_xi, "Sigma_z": self.Sigma_z,
                "Sigma_A": self.Sigma_A, "Sigma_B": self.Sigma_B, "C": self.C,
                "lam": self.lam, "mu": self.mu, **self.params}

    def __repr__(self) -> str:
        """One line: sizes, weights and the kind of noise, e.g.
        `Problem(d_A=8, d_B=8, r=4, m=4, λ=1, noise=isotropic 0.1)` (the matrices are fields)."""
        noise = [_noise_kind(self.A_xi), _noise_kind(self.B_xi)]
        parts = [f"d_A={self.d_A}", f"d_B={self.d_B}", f"r={self.r}", f"m={self.m}", f"λ={self.lam:g}"]
        parts += [f"μ={self.mu:g}"] if self.mu else []
        parts += [f"{k}={v:g}" for k, v in self.params.items()]
        parts += [f"noise={noise[0]}"] if noise[0] == noise[1] else [f"noise_A={noise[0]}", f"noise_B={noise[1]}"]
        parts += [] if np.array_equal(self.Sigma_z, np.eye(self.r)) else ["Σ_z≠I"]
        return f"Problem({', '.join(parts)})"

    def __getstate__(self) -> dict:
        # The per-problem flow cache (`_flowfn.flow_function`) holds generated closures: not picklable,
        # and rebuilt on demand.
        return {k: v for k, v in self.__dict__.items() if k != "_cdyn_flows"}

    def replace(self, **changes: object) -> "Problem":
        """A copy with some fields changed (validated again)."""
        sa, sb = self.__dict__["_cdyn_levels"]
        fields = dict(A=self.A, B=self.B, A_xi=sa or self.A_xi, B_xi=sb or self.B_xi, Sigma_z=self.Sigma_z,
                      m=self.m, lam=self.lam, mu=self.mu, params=dict(self.params))
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{sorted(unknown)[0]}: not a Problem field")
        fields.update(changes)
        return Problem(**fields)  # type: ignore[arg-type]


def _noise_kind(X: np.ndarray) -> str:
    """`none`, `isotropic s` (X = s I), or `rank k` for a noise factor."""
    if X.size == 0 or not np.any(X):
        return "none"
    if X.shape[0] == X.shape[1] and np.all(np.diagonal(X) == X[0, 0]) and np.count_nonzero(X) == X.shape[0]:
        return f"isotropic {X[0, 0]:g}"
    return f"rank {X.shape[1]}"
