"""`[sweep]` specs: designs, seeds, names; every bad spec refused before any work, naming its field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cdyn import cli
from cdyn._config import ConfigError
from cdyn._sweep_spec import parse_sweep, representative_cells

BASE = textwrap.dedent("""
    [problem]
    d_A = 4
    d_B = 4
    m = 2
    spectrum_A = [2.0, 0.5]
    spectrum_B = [1.5, 0.6]
    """)


def spec_of(sweep: str):
    return parse_sweep(BASE + textwrap.dedent(sweep))


def test_grid_cells_dims_and_seeds():
    s = spec_of("""
        [sweep]
        seeds = [3, 7]
        [sweep.grid]
        problem.lam = [0.5, 1, 2.0]
        "problem.spectrum_A[-1]" = [0.1, 0.4]
        "init.scale" = [1e-3]
        """)
    assert s.dims == ("lam", "spectrum_A_1", "scale", "seed") and s.shape == (3, 2, 1, 2) and s.n_cells == 12
    assert s.coords["lam"].dtype == float and list(s.coords["lam"]) == [0.5, 1.0, 2.0]
    # C order, seed last: cell 5 = lam index 1, spectrum index 0, seed index 1
    cfg = s.cell_config(5)
    assert cfg["problem"]["lam"] == 1.0 and cfg["problem"]["spectrum_A"] == [2.0, 0.1]
    assert cfg["problem"]["seed"] == cfg["init"]["seed"] == cfg["train"]["seed"] == 7
    assert s.describe(5) == "lam=1.0,spectrum_A_1=0.1,scale=0.001,seed=7"


def test_names_clash_get_their_section():
    s = spec_of("""
        [sweep]
        seed_fields = ["init.seed"]
        [sweep.grid]
        "run.eta" = [0.01, 0.02]
        "train.eta" = [0.01]
        "problem.seed" = [0, 1]
        """)
    assert s.dims == ("run_eta", "train_eta", "problem_seed", "seed")


@pytest.mark.parametrize("design", ["random", "lhs"])
def test_sampled_designs_are_seeded_and_in_range(design):
    sweep = f"""
        [sweep]
        design = "{design}"
        samples = 20
        seed = 4
        [sweep.ranges]
        "init.scale" = {{ low = 1e-6, high = 1e-2, log = true }}
        "problem.m" = [1, 2]
        "problem.lam" = [0.5, 2.0]
        """
    a, b = spec_of(sweep), spec_of(sweep)
    assert a.values == b.values and a.dims == ("sample", "seed") and a.shape == (20, 1)
    scale, m, lam = (np.array([v[j] for v in a.values]) for j in range(3))
    assert np.all((scale >= 1e-6) & (scale <= 1e-2)) and np.all((lam >= 0.5) & (lam <= 2.0))
    assert set(m.tolist()) == {1, 2} and all(isinstance(v[1], int) for v in a.values)
    if design == "lhs":  # one sample in each of the 20 equal strata of every field (in log for the scale)
        u = (np.log(scale) - np.log(1e-6)) / (np.log(1e-2) - np.log(1e-6))
        assert sorted(np.floor(u * 20).astype(int).tolist()) == list(range(20))
        assert sorted(np.floor((lam - 0.5) / 1.5 * 20).astype(int).tolist()) == list(range(20))
    assert spec_of(sweep.replace("seed = 4", "seed = 5")).values != a.values


BAD = [
    ("[sweep]\n", "grid"),
    ("[sweep]\ndesign = 'sobol'\n", "design"),
    ("[sweep]\nfoo = 1\n", "foo"),
    ("[sweep]\n[sweep.grid]\n'problem.lambda' = [1.0]\n", "problem.lambda"),
    ("[sweep]\n[sweep.grid]\n'model.lam' = [1.0]\n", "model.lam"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = []\n", "grid.problem.lam"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = 1.0\n", "grid.problem.lam"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = [1.0, 'x']\n", "[problem].lam"),
    ("[sweep]\n[sweep.grid]\n'problem.spectrum_A[5]' = [1.0]\n", "problem.spectrum_A[5]"),
    ("[sweep]\n[sweep.grid]\n'run.terms[0]' = ['pos']\n", "run.terms[0]"),
    ("[sweep]\nseeds = 0\n[sweep.grid]\n'problem.lam' = [1.0]\n", "seeds"),
    ("[sweep]\nseeds = [1, 1]\n[sweep.grid]\n'problem.lam' = [1.0]\n", "seeds"),
    ("[sweep]\nseed_fields = ['problem.lam']\n[sweep.grid]\n'problem.mu' = [1.0]\n", "seed_fields"),
    ("[sweep]\ninit = 'xavier'\n[sweep.grid]\n'problem.lam' = [1.0]\n", "init"),
    ("[sweep]\ntrain = 'adam'\n[sweep.grid]\n'problem.lam' = [1.0]\n", "train"),
    ("[sweep]\nbatch = -1\n[sweep.grid]\n'problem.lam' = [1.0]\n", "batch"),
    ("[sweep]\ndesign = 'lhs'\n[sweep.ranges]\n'problem.lam' = [0.1, 1.0]\n", "samples"),
    ("[sweep]\ndesign = 'lhs'\nsamples = 4\n[sweep.ranges]\n'problem.lam' = [1.0, 0.1]\n", "ranges.problem.lam"),
    ("[sweep]\ndesign = 'random'\nsamples = 4\n[sweep.ranges]\n'problem.lam' = {low = 0.0, high = 1.0, log = true}\n",
     "ranges.problem.lam"),
    ("[sweep]\ndesign = 'random'\nsamples = 4\n[sweep.ranges]\n'run.terms' = [0, 1]\n", "ranges.run.terms"),
    ("[sweep]\ndesign = 'random'\nsamples = 4\n[sweep.ranges]\n'problem.m' = [1.5, 3]\n", "ranges.problem.m.low"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = [1.0]\n[sweep.ranges]\n'problem.mu' = [0, 1]\n", "ranges"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = [1.0, 2.0, 1.0]\n", "grid.problem.lam"),
    ("[sweep]\n[sweep.grid]\n'problem.lam' = [1.0]\n'problem.lam' = [2.0]\n", "malformed TOML"),
]


@pytest.mark.parametrize("sweep, field", BAD)
def test_bad_specs_name_the_field(sweep, field):
    with pytest.raises(ConfigError) as err:
        spec_of(sweep)
    msg = str(err.value)
    assert field in msg and "\n" not in msg, msg


def test_a_base_config_error_is_the_usual_one():
    with pytest.raises(ConfigError, match=r"unknown key \[problem\]\.lambda"):
        parse_sweep("[problem]\nlambda = 1.0\n[sweep]\n[sweep.grid]\n'problem.lam' = [1.0]\n")


@pytest.mark.parametrize("sweep, field", [
    # values refused by the instance, the init, the terms or the budget: found by the pre-check
    ("[sweep]\n[sweep.grid]\n'problem.lam' = [1.0, -2.0]\n", "lam=-2.0"),
    ("[sweep]\n[sweep.grid]\n'problem.d_A' = [4, 1]\n", "d_A"),
    ("[sweep]\n[sweep.grid]\n'run.terms' = [['pos', 'neg'], ['pos', 'nope']]\n", "nope"),
    ("[sweep]\n[sweep.grid]\n'run.method' = ['auto', 'Euler']\n", "method"),
    ("[sweep]\n[sweep.grid]\n'init.scale' = [1e-3, 1e9]\n", "scale"),
    ("[sweep]\ninit = 'balanced'\n[sweep.grid]\n'problem.lam' = [1.0]\n", "shared_right"),
    ("[sweep]\ntrain = 'sgd'\n[sweep.grid]\n'train.loss' = ['spectral', 'triplet']\n", "loss"),
    ("[sweep]\n[sweep.grid]\n'run.n_points' = [41, 100000000]\n", "memory"),
])
def test_bad_values_refused_before_any_work(tmp_path, capsys, sweep, field):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE + sweep)
    store = tmp_path / "out.zarr"
    rc = cli.main(["sweep", "--config", str(cfg), "--out", str(store), "--workers", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and field in err and "\n" not in err, err
    assert not store.exists()


def test_representative_cells_cover_every_value():
    s = spec_of("[sweep]\nseeds = 3\n[sweep.grid]\n'problem.lam' = " + json.dumps([0.1 * i for i in range(1, 61)])
                + "\n'problem.mu' = " + json.dumps([0.01 * i for i in range(40)]) + "\n")
    assert s.n_cells == 7200
    picks = representative_cells(s)
    seen = {(s.cell_values(c)[0]["problem.lam"], s.cell_values(c)[0]["problem.mu"]) for c in picks}
    assert {v for v, _ in seen} == set(s.values[0]) and {v for _, v in seen} == set(s.values[1])
    assert len(picks) < 120


@pytest.mark.parametrize("name", ["peak_time", "cca_limit"])
def test_builtin_sweeps_parse_and_their_cells_validate(name):
    """The sweeps shipped in sweeps/ (and quoted in the README) are valid specs: every field known,
    every representative cell's config validated, the cell count the one the README quotes."""
    import math
    import re

    from cdyn._sweep_spec import parse_sweep, representative_cells

    root = Path(__file__).resolve().parents[1]
    text = (root / "sweeps" / f"{name}.toml").read_text()
    spec = parse_sweep(text, f"sweeps/{name}.toml")
    assert spec.design == "grid" and spec.dims[-1] == "seed"
    assert representative_cells(spec)
    n = math.prod(spec.shape)
    readme = (root / "README.md").read_text()
    assert re.search(rf"{n} cells", readme[readme.index(f"sweeps/{name}.toml`"):]), (name, n)
