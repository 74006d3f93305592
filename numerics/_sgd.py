r"""Mini-batch SGD with in-batch negatives, on the flow's time axis $t = k\eta$.

Each step draws a batch of $n$ positive pairs (fresh every step — *online* — or from a
fixed data set of `n_data` pairs reshuffled every epoch) and moves
$W \leftarrow W - \eta\,\nabla\hat L$ with one of three losses:

- `"spectral"`: $\hat L_{pos} + \lambda \hat L_{neg}$, the unbiased batch estimator of the
  population loss whose flow `integrate` solves (`theory._batch`: the negatives are the
  other pairs of the batch, through the off-diagonal U-statistic);
- `"pos-only"`: $\hat L_{pos}$ alone;
- `"clip"`: CLIP's symmetric InfoNCE on the batch logits $\langle f_A, f_B\rangle / T$,
  with the temperature $T$ fixed or learned as in CLIP ($\log(1/T)$ is a parameter,
  $1/T$ clamped at 100), optionally with L2-normalised features.

`weight_decay` $= \mu > 0$ adds the exact gradient of the `wd` term,
$\tfrac{\mu}{2}(\|W_A\|^2 + \|W_B\|^2)$, to any of them.

`path` is the form a step takes. `"full"` draws the batch matrices $X_A, X_B$ ($n\times d$) and
evaluates the estimators of `theory._batch` on them (with isotropic noise the sampler
multiplies by a $d\times d$ $\sigma I$). `"structured"` draws the same pairs as their factors
$(Z, \Xi_A, \Xi_B)$ from the same random stream (`_sgd_sampler`) and steps the feature form of
`theory._batch_structured`: $F_A = W_AX_A^\top$ ($m\times n$) from the factors, the gradient as
$(P_AZ)A^\top + (P_A\Xi_A)A_\xi^\top$; no $d\times d$ array, no batch second moment. Same
seed, same numbers up to rounding. `"auto"` takes the structured form wherever it applies
(every term factors through the features; CLIP: always, the batch is formed from its factors),
except below $d = $ `STRUCTURED_FROM_D`, where a step is Python overhead and the full form's
fewer operations were as fast or faster (`benchmarks/sgd_speed.py`, benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cdyn.theory._batch_structured import NotFeatureForm, feature_batch

from ._batch_structured import structured_batch_function
from ._batchfn import batch_function
from ._autochoice import thread_limit
from ._budget import FLOAT, check_memory, check_steps, gd_steps, sgd_memory, samples_memory
from ._clip import clip_loss_and_grad
from ._flowfn import flow_function
from ._integrate import check_init
from ._problem import Problem
from ._sampling import Z_DISTRIBUTIONS, sample_pairs
from ._sgd_sampler import batch_matrices, factor_memory, factor_sampler
from ._structured import noise_kinds
from ._trajectory import Trajectory, weights_norm
from ._validate import as_int, as_real

LOSSES = ("spectral", "clip", "pos-only")
SGD_PATHS = ("auto", "full", "structured")
#: "auto" steps the structured form from this input size on. Measured interleaved, one thread,
#: batch 256: at d = 8 (r = m = 4) the full form ran 1.07-1.09x the structured one's steps/s in two
#: runs; at d = 16 the structured form was level or ahead (1.0-1.23x), 1.35-1.5x at d = 32, 2x at 256.
STRUCTURED_FROM_D = 16
#: CLIP clamps its learned logit scale 1/T at 100.
MAX_INVERSE_TEMPERATURE = 100.0


@dataclass(frozen=True)
class SGDTrajectory(Trajectory):
    """A `Trajectory` with what only SGD has: the mini-batch loss and the CLIP temperature.

    `terms` names the population loss the run estimates (for `"clip"`: `pos, neg`, only
    for reporting, since InfoNCE has no closed-form population loss).
    """

    loss_name: str = "spectral"
    batch: int = 0
    batch_loss: np.ndarray | None = None
    temperature: np.ndarray | None = None

    def summary(self) -> dict:
        out = super().summary() | {"loss": self.loss_name, "batch": self.batch}
        if self.temperature is not None:
            out["final_temperature"] = float(self.temperature[-1])
        return out


def _steps(eta: float, t_end: object, steps: object, epochs: object, n_data: int | None, batch: int) -> int:
    given = [k for k, v in (("t_end", t_end), ("steps", steps), ("epochs", epochs)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"t_end, steps, epochs: give exactly one (got {', '.join(given) or 'none'})")
    if t_end is not None:
        return gd_steps(as_real("t_end", t_end, low=0.0, strict=True), eta)
    if steps is not None:
        return check_steps("steps", as_int("steps", steps), "the run")
    if n_data is None:
        raise ValueError("epochs: needs a fixed data set (n_data)")
    return max(1, check_steps("epochs", as_int("epochs", epochs) * (n_data // batch), "epochs * (n_data // batch)"))


def _sampler(p: Problem, batch: int, n_data: int | None, rng: np.random.Generator,
             z_dist: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    # Sigma_z = I is passed as None so the sampler skips an (exact but noisy) square root.
    Sz = None if np.array_equal(p.Sigma_z, np.eye(p.r)) else p.Sigma_z
    A_xi = p.A_xi if p.A_xi.shape[1] else None
    B_xi = p.B_xi if p.B_xi.shape[1] else None
    state = {"order": np.empty(0, dtype=int), "pos": 0}
    if n_data is None:
        # Fresh pairs every step, drawn a few thousand rows at a time (the per-call overhead
        # of the sampler would otherwise rival the step itself); still a pure function of the seed.
        chunk = max(1, 8192 // batch) * batch
        buf: dict[str, np.ndarray] = {}

        def fresh() -> tuple[np.ndarray, np.ndarray]:
            if state["pos"] == 0:
                buf["A"], buf["B"] = sample_pairs(p.A, p.B, A_xi, B_xi, Sz, chunk, rng, z_dist)
            i = state["pos"]
            state["pos"] = (i + batch) % chunk
            return buf["A"][i: i + batch], buf["B"][i: i + batch]

        return fresh
    XA, XB = sample_pairs(p.A, p.B, A_xi, B_xi, Sz, n_data, rng, z_dist)

    def draw() -> tuple[np.ndarray, np.ndarray]:
        if state["pos"] + batch > state["order"].size:  # new epoch; the incomplete tail is dropped
            state["order"], state["pos"] = rng.permutation(n_data), 0
        idx = state["order"][state["pos"]: state["pos"] + batch]
        state["pos"] += batch
        return XA[idx], XB[idx]

    return draw


def _choose(p: Problem, terms: tuple[str, ...], loss: str, batch: int, negatives: str, path: object) -> str:
    """The form a step takes: `path`, or for "auto" the structured one where it applies."""
    if not isinstance(path, str) or path not in SGD_PATHS:
        shown = path if isinstance(path, str) and len(path) <= 60 else type(path).__name__
        raise ValueError(f"path: unknown form {shown!r}; choose from {', '.join(SGD_PATHS)}")
    if path == "full" or path == "auto" and max(p.d_A, p.d_B) < STRUCTURED_FROM_D:
        return "full"
    if loss != "clip":
        try:
            feature_batch(terms, negatives, *noise_kinds(p)[0])  # derived once, cached; compiled later
        except NotFeatureForm as e:
            if path == "structured":
                raise ValueError(f"path: the structured form does not apply here: {e}") from None
            return "full"
    return "structured"


def sgd(
    problem: Problem,
    W_A0: np.ndarray,
    W_B0: np.ndarray,
    eta: float,
    t_end: float | None = None,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch: int = 256,
    loss: str = "spectral",
    n_data: int | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    learn_tau: bool = False,
    normalize: bool = False,
    weight_decay: float = 0.0,
    z_dist: str = "gaussian",
    negatives: str = "u",
    n_points: int = 401,
    max_norm: float = 1e6,
    progress: Callable[[int, int], None] | None = None,
    path: str = "auto",
    threads: int | str | None = "auto",
) -> SGDTrajectory:
    r"""Run mini-batch SGD; same seed, same numbers.

    Give exactly one of `t_end` (steps $= \mathrm{round}(t_{end}/\eta)$), `steps`, or
    `epochs` (with `n_data`). `n_data=None` draws fresh pairs every step. A run whose
    $\|W\|_F$ exceeds `max_norm` or stops being finite ends with status `diverged` at
    $t = k\eta$. `progress(k, steps)` is called every snapshot (for a progress bar).
    `path`: "auto" | "full" | "structured" (module docstring); `SGDTrajectory.path` says which ran.
    `threads`: BLAS threads during the steps ("auto": one, as `integrate` for thin products: a
    step multiplies $m\times d$ by $d\times n$, where a second thread on the busy 2-core machine
    made $W_A\Xi_A^\top$ 30× slower, 0.3 s against 10 ms at $d = 4096$, $m = 8$; None: leave as is).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected numerics.Problem, got {type(problem).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    W_A, W_B = check_init(problem, W_A0, W_B0)
    eta = as_real("eta", eta, low=0.0, strict=True)
    batch = as_int("batch", batch, low=2 if loss in ("spectral", "clip") else 1)
    if n_data is not None and as_int("n_data", n_data) < batch:
        raise ValueError(f"n_data: must be >= batch = {batch}, got {n_data}")
    n_steps = _steps(eta, t_end, steps, epochs, n_data, batch)
    n_points = as_int("n_points", n_points, low=2)
    if z_dist not in Z_DISTRIBUTIONS:
        raise ValueError(f"z_dist: expected one of {Z_DISTRIBUTIONS}, got {z_dist!r}")
    mu = as_real("weight_decay", weight_decay, low=0.0)
    max_norm = as_real("max_norm", max_norm, low=0.0, strict=True)
    log_inv_T = -np.log(as_real("temperature", temperature, low=0.0, strict=True))
    stride = max(1, n_steps // (n_points - 1))
    seed = as_int("seed", seed, low=0)
    if negatives not in ("u", "v"):
        raise ValueError(f"negatives: expected 'u' or 'v', got {negatives!r}")
    if not (threads is None or isinstance(threads, str) and threads == "auto"
            or isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        shown = threads if isinstance(threads, (int, str)) and len(str(threads)) <= 60 else type(threads).__name__
        raise ValueError(f"threads: expected 'auto', None or an integer >= 1, got {shown!r}")

    # A new Problem recomputes its moments, so only build one when weight decay needs it.
    p = problem.replace(mu=mu) if mu > 0 and mu != problem.mu else problem
    wd = ("wd",) if mu > 0 else ()
    terms = (("pos", "neg") if loss in ("spectral", "clip") else ("pos",)) + wd
    form = _choose(p, terms, loss, batch, negatives, path)
    n_data = None if n_data is None else int(n_data)
    snap_mem = samples_memory(min(n_points, n_steps + 1), problem.m, problem.d_A, problem.d_B)
    if form == "full":
        check_memory(sgd_memory(batch, n_data, problem.d_A, problem.d_B, problem.r) | snap_mem, "sgd")
    else:
        parts = factor_memory(batch, n_data, p.A_xi.shape[1], p.B_xi.shape[1], p.r, p.m)
        if loss == "clip":  # CLIP forms the batch (n×d) and its n×n logits
            parts["batch"] = parts.get("batch", 0.0) + FLOAT * (batch * (p.d_A + p.d_B) + 3.0 * batch**2)
        check_memory(parts | snap_mem, "sgd")
    rng = np.random.default_rng(seed)
    draw = (_sampler(problem, batch, n_data, rng, z_dist) if form == "full"
            else factor_sampler(p, batch, n_data, rng, z_dist))
    kinds, levels = noise_kinds(p)

    if loss == "clip":
        decay = flow_function(p, ("wd",)) if mu > 0 else None

        def step(WA: np.ndarray, WB: np.ndarray, data: tuple, _need_loss: bool):
            XA, XB = data if form == "full" else batch_matrices(p, kinds, levels, *data)
            L, gA, gB, g_t = clip_loss_and_grad(WA, WB, XA, XB, float(np.exp(log_inv_T)), normalize, learn_tau)
            if decay is not None:
                dA, dB = decay(WA, WB)  # the flow of `wd` is -grad
                gA, gB = gA - dA, gB - dB
            return L, gA, gB, g_t
    else:
        fn = (batch_function(p, terms, batch, negatives) if form == "full"
              else structured_batch_function(p, terms, batch, negatives))

        def step(WA: np.ndarray, WB: np.ndarray, data: tuple, need_loss: bool):
            if need_loss:
                return (*fn(WA, WB, *data), None)
            return (np.nan, *fn.grad(WA, WB, *data), None)

    snaps = {"t": [0.0], "A": [W_A.copy()], "B": [W_B.copy()], "T": [float(np.exp(-log_inv_T))], "loss": []}

    def snapshot(k: int, L: float) -> None:
        snaps["t"].append(k * eta)
        snaps["A"].append(W_A.copy())
        snaps["B"].append(W_B.copy())
        snaps["T"].append(float(np.exp(-log_inv_T)))
        snaps["loss"].append(float(L))

    status, t_stop, k, first_loss = "completed", n_steps * eta, 0, np.nan
    if not weights_norm(W_A, W_B) <= max_norm:  # above the limit from the start: not one step
        status, t_stop, n_steps = "diverged", 0.0, 0
    with np.errstate(over="ignore", invalid="ignore"), thread_limit(0.0, threads):
        for k in range(1, n_steps + 1):
            data = draw()
            # The batch loss is only evaluated where it is recorded: on the first step and on
            # each step that ends at a snapshot (the loss at that step's starting weights).
            at_snap = k % stride == 0 or k == n_steps
            try:
                L, gA, gB, g_t = step(W_A, W_B, data, at_snap or k == 1)
            except FloatingPointError:  # CLIP logits beyond float range: the run has diverged
                status, t_stop = "diverged", k * eta
                break
            first_loss = L if k == 1 else first_loss
            W_A, W_B = W_A - eta * gA, W_B - eta * gB
            if g_t is not None:
                log_inv_T = min(log_inv_T - eta * g_t, np.log(MAX_INVERSE_TEMPERATURE))
            norm = np.sqrt(np.sum(W_A * W_A) + np.sum(W_B * W_B))
            if not np.isfinite(norm) or norm > max_norm:
                status, t_stop = "diverged", k * eta
                if np.isfinite(norm):  # keep the last finite state, as gradient_descent does
                    snapshot(k, L)
                break
            if at_snap:
                snapshot(k, L)
                if progress is not None:
                    progress(k, n_steps)
    # Snapshot 0 gets the first step's batch loss (at W_0); snapshot j the loss of the
    # step that produced it (at that step's starting weights).
    batch_loss = np.array([first_loss] + snaps["loss"])
    name = f"SGD({loss}, batch={batch}, eta={eta:g}{', online' if n_data is None else f', n_data={n_data}'})"
    return SGDTrajectory(
        np.array(snaps["t"]), np.array(snaps["A"]), np.array(snaps["B"]), status, t_stop,
        n_steps if status == "completed" else k, name, terms,
        message=f"{status} after {k} steps", loss_name=loss, batch=batch, batch_loss=batch_loss,
        temperature=np.array(snaps["T"]) if loss == "clip" else None, path=form)
