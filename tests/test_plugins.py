"""Plugins and the claim-authoring API: the README example from a fresh process, replay, entry points.

The README's plugin block is written to a file and run exactly as a user would:
`cdyn --plugin x.py verify` from a fresh process (true claim verified, mis-statement falsified),
then `--replay` with and without the plugin. A test that loads a plugin in this process does so
through the `undo_plugins` fixture, which removes its claims, terms and records again and checks
that the registries are back as shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from cdyn import theory
from hypothesis import given, settings

from cdyn import claims
from cdyn import numerics
from cdyn import _common, _config
from cdyn.cli import main
from cdyn.claims.helpers import escape_time, integrate_tight, log_norm_error_bound
from cdyn.claims.strategies import build_init, build_problem, inits, problem_specs
from tests.helpers import readme_plugin_report  # noqa: F401 -- a fixture
from tests.test_readme import ROOT

# loadgroup: with test_verify_dask, which compares its remote run with the same fresh-process plugin verify
# (`helpers.readme_plugin_report`, a per-worker session fixture): run once, on one worker.
pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture
def verified(readme_plugin_report):
    """The README plugin saved to a file and verified from a fresh process: (DIR, plugin, report dir)."""
    d, plugin, code, stderr = readme_plugin_report
    assert code == 0, stderr[-2000:]
    return d, plugin, d / "serial" / "report"


def _registry_state() -> tuple:
    from cdyn.claims import _plugins, _registry

    return (set(_registry._CLAIMS), set(theory.available_terms()), dict(_plugins._LOADED),
            dict(_plugins._TERM_ORIGINS), {m for m in sys.modules if m.startswith("cdyn_plugin_")})


@pytest.fixture
def undo_plugins():
    """Plugins a test loads in this process (`main(["--plugin", ...])`) are removed again afterwards, and the
    registries checked to be as before: other tests on this worker (and the Dask workers they start, which
    load `plugin_paths()`) see the shipped claims and terms only."""
    from cdyn.claims import _plugins, _registry

    _registry.load_all()
    before = _registry_state()
    claims_before, terms_before, loaded_before, origins_before, modules_before = before
    yield
    _registry._forget([i for i in _registry._CLAIMS if i not in claims_before])
    for name in set(theory.available_terms()) - terms_before:
        theory.unregister_term(name)
    for key in set(_plugins._LOADED) - set(loaded_before):
        del _plugins._LOADED[key]
    for name in set(_plugins._TERM_ORIGINS) - set(origins_before):
        del _plugins._TERM_ORIGINS[name]
    for name in {m for m in sys.modules if m.startswith("cdyn_plugin_")} - modules_before:
        del sys.modules[name]
    assert _registry_state() == before


def test_readme_plugin_verifies_true_and_falsifies_false(verified):
    _, plugin, report = verified
    results = {r["id"]: r for r in json.loads((report / "results.json").read_text())["claims"]}
    assert results["VAR1"]["result"] == "verified" and results["VAR1"]["worst_margin"] >= 0
    assert results["VAR1-false"]["result"] == "falsified"
    record = json.loads((report / "counterexamples" / "VAR1-false.json").read_text())
    assert record["margin"] < 0
    assert record["plugin"] == {"kind": "file", "path": str(plugin.resolve()),
                                "sha256": hashlib.sha256(plugin.read_bytes()).hexdigest()}


def test_replay_with_the_plugin_reproduces_the_margin_exactly(verified, undo_plugins, tmp_path, capsys):
    """The saved counterexample, and a copy whose record says the plugin file was different."""
    _, plugin, report = verified
    cx = report / "counterexamples" / "VAR1-false.json"
    record = json.loads(cx.read_text())
    stored = record["margin"]
    record["plugin"]["sha256"] = "0" * 64  # as if the file had been edited since the record was saved
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(record))
    # `cdyn` is `cdyn.cli:main`: two replays in this process, as `cdyn --plugin P verify --replay F` twice.
    assert "VAR1-false" not in [c.id for c in claims.all_claims()]
    assert main(["--plugin", str(plugin), "verify", "--replay", str(cx)]) == 0
    first = capsys.readouterr().out
    assert main(["--plugin", str(plugin), "verify", "--replay", str(changed)]) == 0
    second = capsys.readouterr().out
    assert f"replayed margin {stored!r} (stored {stored!r}): reproduced exactly" in first
    assert "differs" not in first
    assert f"plugin file {plugin.resolve()} differs from the one that saved this record" in second
    assert "reproduced exactly" in second


def test_replay_without_the_plugin_says_what_to_load(verified, capsys):
    _, plugin, report = verified
    cx = report / "counterexamples" / "VAR1-false.json"
    assert main(["verify", "--replay", str(cx)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (f"error: claim 'VAR1-false' comes from plugin {plugin.resolve()}; "
                       f"rerun as: cdyn --plugin {plugin.resolve()} verify --replay {cx}\n")


def test_replay_never_loads_code_named_in_the_json(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
    cx = tmp_path / "cx.json"
    cx.write_text(json.dumps({"claim": "EVIL1", "instance": {}, "margin": -1.0,
                              "plugin": {"kind": "file", "path": str(evil), "sha256": "0" * 64}}))
    assert main(["verify", "--replay", str(cx)]) == 2
    assert not marker.exists()
    assert f"rerun as: cdyn --plugin {evil} verify --replay" in capsys.readouterr().err
    # An entry-point record names the distribution to install.
    cx.write_text(json.dumps({"claim": "EP1", "instance": {}, "margin": -1.0,
                              "plugin": {"kind": "entry_point", "name": "variance", "value": "pkg.mod",
                                         "distribution": "myplug", "version": "0.1"}}))
    assert main(["verify", "--replay", str(cx)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entry point variance" in err and "distribution myplug" in err


EP_MODULE = """
import sympy as sp
from cdyn import theory, claims
from hypothesis import strategies as st
from cdyn.theory.symbols import W_A, Sigma_A
theory.register_term("ep_penalty", sp.Trace(W_A * Sigma_A * W_A.T) / 2, weight=sp.Symbol("ep_nu"))
claims.register(claims.Claim(id="EPTEST1", title="t", statement="s", latex="x", hypotheses=(),
                             strategy=lambda: st.just({}), check=lambda i: claims.CheckResult(1.0)))
"""


@pytest.fixture
def entry_point_plugin(tmp_path, monkeypatch):
    """A distribution `epdist` 0.1 with one `cdyn.plugins` entry point; removed again afterwards."""
    import importlib.metadata as md

    from cdyn.claims import _plugins, _registry

    site = tmp_path / "site"
    (site / "epdist-0.1.dist-info").mkdir(parents=True)
    (site / "ep_module.py").write_text(EP_MODULE)
    (site / "epdist-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: epdist\nVersion: 0.1\n")
    (site / "epdist-0.1.dist-info" / "entry_points.txt").write_text("[cdyn.plugins]\nep = ep_module\n")
    monkeypatch.syspath_prepend(str(site))
    (dist,) = md.distributions(path=[str(site)])
    monkeypatch.setattr(md, "entry_points", lambda group=None, **kw: [e for e in dist.entry_points if e.group == group])
    yield
    theory.unregister_term("ep_penalty")
    _registry._forget(["EPTEST1"])
    for key in [k for k in _plugins._LOADED if k.startswith("entry_point:ep=")]:
        del _plugins._LOADED[key]
    _plugins._TERM_ORIGINS.pop("ep_penalty", None)
    sys.modules.pop("ep_module", None)


def test_entry_point_plugin_reaches_every_command(entry_point_plugin, tmp_path, capsys):
    assert "ep_penalty" not in theory.available_terms()
    assert main(["derive", "--terms", "pos,ep_penalty", "--out", str(tmp_path / "deriv")]) == 0
    out = capsys.readouterr().out
    # The user's term flow, printed: -∂/∂W_A of ep_nu/2 tr(W_A Σ_A W_Aᵀ) is -ep_nu W_A Σ_A.
    assert "# terms: pos, ep_penalty" in out and "dW_A/dt = W_B Cᵀ - ep_ν W_A Σ_A" in out
    expected = {"kind": "entry_point", "group": "cdyn.plugins", "name": "ep", "value": "ep_module",
                "distribution": "epdist", "version": "0.1"}
    assert claims.claim_origin("EPTEST1") == expected and claims.term_origin("ep_penalty") == expected
    tex = (tmp_path / "deriv" / "plugins" / "pos+ep_penalty.tex").read_text()
    assert "% ep_penalty: from entry point 'ep' (ep_module) of epdist" in tex
    assert "% flow: pos + ep_penalty" in tex and theory.gradient_flow(("pos", "ep_penalty")).latex() in tex
    res = claims.run_claim(claims.get_claim("EPTEST1"), examples=1)
    assert res.result == "verified"


def test_public_modules_register_nothing():
    code = "import cdyn.claims as claims, cdyn.claims._registry as r; import cdyn.claims.strategies, cdyn.claims.helpers; print(len(r._CLAIMS))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr


def test_simulate_config_names_a_plugin_term_with_params(tmp_path, verified, undo_plugins, monkeypatch):
    _, plugin, _ = verified
    nu = 1.5  # > ρ₁ (≤ 1), so H is positive definite and the flow contracts
    cfg_text = (f"[problem]\nparams = {{ nu = {nu} }}\n[init]\nscale = 1.0\n"
                "[run]\nterms = ['pos', 'variance']\nt_end = 5.0\n")
    (tmp_path / "c.toml").write_text(cfg_text)
    monkeypatch.chdir(tmp_path)
    assert main(["--plugin", str(plugin), "simulate", "--config", "c.toml", "--out", "o", "--no-gd"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["problem"]["params"] == {"nu": nu} and summary["run"]["terms"] == ["pos", "variance"]
    # The flow is ẏ = -Hy row by row: compare with expm, within the sum of the solver's local errors.
    p = _common.problem_from_config(_config.load_config(tmp_path / "c.toml"))
    H = np.block([[nu * p.Sigma_A, -p.C], [-p.C.T, nu * p.Sigma_B]])
    assert np.linalg.eigvalsh(H)[0] > 0
    Y0 = np.hstack(numerics.random_init(p, 1.0, 0))
    traj = np.load(tmp_path / "o" / "trajectory.npz")
    T = float(traj["flow_t"][-1])
    Y_num = np.hstack([traj["flow_W_A"][-1], traj["flow_W_B"][-1]])
    Y_exact = Y0 @ scipy.linalg.expm(-H * T)
    bound = summary["flow"]["nfev"] * np.sqrt(Y0.size) * (1e-8 * np.abs(Y0).max() + 1e-12)
    assert np.linalg.norm(Y_num - Y_exact) <= bound
    # A wrong nu would not pass: the same comparison against nu = 1.4 misses by far more.
    H_wrong = np.block([[1.4 * p.Sigma_A, -p.C], [-p.C.T, 1.4 * p.Sigma_B]])
    assert np.linalg.norm(Y_num - Y0 @ scipy.linalg.expm(-H_wrong * T)) > 100 * bound


def test_plugin_load_errors_are_one_line_and_undone(tmp_path, capsys):
    missing = tmp_path / "missing.py"
    assert main(["--plugin", str(missing), "derive", "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == f"error: plugin {missing}: no such file\n"
    txt = tmp_path / "p.txt"
    txt.write_text("")
    assert main(["--plugin", str(txt), "derive"]) == 2
    assert capsys.readouterr().err == f"error: plugin {txt}: not a .py file\n"
    half = tmp_path / "half.py"
    half.write_text("import sympy as sp\nfrom cdyn import theory\nfrom cdyn.theory.symbols import W_A\n"
                    "theory.register_term('half_done', sp.Trace(W_A * W_A.T))\nraise RuntimeError('boom')\n")
    assert main(["--plugin", str(half), "derive", "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == f"error: plugin {half}: RuntimeError: boom\n"
    assert "half_done" not in theory.available_terms()
    assert not (tmp_path / "d").exists()
    with pytest.raises(claims.PluginError, match="SyntaxError"):
        (tmp_path / "syntax.py").write_text("def (\n")
        claims.load_plugin(tmp_path / "syntax.py")


@pytest.mark.parametrize("toml, message", [
    ("[run]\nplugin = 'x.py'\n", "unknown key [run].plugin"),
    ("[problem]\nplugin = 'x.py'\n", "unknown key [problem].plugin"),
    ("[problem]\nparams = { 'nu-1' = 0.5 }\n", "[problem].params: 'nu-1' is not a valid symbol name"),
    ("[problem]\nparams = { nu = '0.5' }\n", "[problem].params.nu must be a finite number"),
    ("[problem]\nparams = { nu = nan }\n", "[problem].params.nu must be a finite number"),
    ("[problem]\nparams = { nu = true }\n", "[problem].params.nu must be a finite number"),
    ("[problem]\nparams = { lam = 0.5 }\n", "[problem].params.lam: reserved name; set it as [problem].lam"),
    ("[problem]\nparams = 0.5\n", "[problem].params must be a table"),
])
def test_configs_name_terms_never_code(toml, message):
    import tomllib

    with pytest.raises(_config.ConfigError) as err:
        _config.validate(tomllib.loads(toml))
    assert message in str(err.value)


def test_config_params_reach_the_problem():
    import tomllib

    cfg = _config.validate(tomllib.loads("[problem]\nparams = { nu = 0.5, eta_2 = 3 }\n"))
    assert _common.problem_from_config(cfg).params == {"nu": 0.5, "eta_2": 3.0}


@settings(max_examples=25)
@given(problem_specs(r=(1, 4), params={"nu": (0.1, 2.0)}), inits())
def test_problem_specs_build_what_they_say(spec, init):
    assert json.loads(json.dumps(spec)) == spec  # JSON round-trips exactly, so replay is exact
    for key in ("spectrum_A", "spectrum_B"):
        assert all(x > y for x, y in zip(spec[key], spec[key][1:]))
    p = build_problem(spec)
    assert (p.r, p.d_A, p.d_B, p.m) == (len(spec["spectrum_A"]), spec["d_A"], spec["d_B"], spec["m"])
    assert p.d_A >= p.r and p.d_B >= p.r and p.params == spec["params"]
    # Haar bases are orthonormal to rounding: singular values are the drawn spectrum.
    eps = np.finfo(float).eps
    for M, s in ((p.A, spec["spectrum_A"]), (p.B, spec["spectrum_B"])):
        np.testing.assert_allclose(np.linalg.svd(M, compute_uv=False), s, rtol=100 * eps * max(p.d_A, p.d_B))
    np.testing.assert_array_equal(build_problem(spec).A, p.A)  # same spec, same matrices
    W_A, W_B = build_init(p, init)
    assert W_A.shape == (p.m, p.d_A) and W_B.shape == (p.m, p.d_B)


def test_escape_time_is_when_the_weakest_mode_reaches_one():
    d = numerics.decoupled_instance([2.0, 1.0, 0.5], [1.5, 1.0, 0.6], lam=1.0)
    s = 1e-3
    t = escape_time(d.problem, s)
    # Positive pairs only, balanced: X(t) = X₀ e^{2gt} (dsolve, THEORY §5), X₀ = s².
    assert abs(float(numerics.positive_only_X(t, s**2, d.g.min())) - 1.0) < 1e-12


def test_log_norm_error_bound_covers_the_solver_error():
    p = numerics.random_problem([1.5, 0.8], [1.2, 0.7], d_A=3, d_B=3, m=2, noise_A=0.1, noise_B=0.1, seed=1)
    W_A0, W_B0 = numerics.random_init(p, 0.5, 2)
    T = 3.0
    traj = integrate_tight(p, W_A0, W_B0, T, ("pos",), path="full")
    # Positive pairs alone: ẏ = Gy with G = [[0, C], [Cᵀ, 0]] per row; errors grow by ≤ e^{σ₁(C) T}.
    G = np.block([[np.zeros((p.d_A, p.d_A)), p.C], [p.C.T, np.zeros((p.d_B, p.d_B))]])
    Y0 = np.hstack([W_A0, W_B0])
    exact = np.array([np.linalg.norm(Y0 @ scipy.linalg.expm(G * t)) for t in traj.t])
    numeric = np.sqrt(np.sum(traj.W_A**2, axis=(1, 2)) + np.sum(traj.W_B**2, axis=(1, 2)))
    bound = log_norm_error_bound(traj, amplification=float(np.exp(np.linalg.norm(p.C, 2) * T)))
    err = np.abs(np.log(numeric) - np.log(exact)).max()
    assert 0 < err <= bound < 1e-3
