"""The on-disk derivation cache (`theory._diskcache`): same trees back, stale or corrupt entries ignored."""

from __future__ import annotations

import json
import pickle

import pytest
import sympy as sp

from cdyn import theory
from cdyn.theory import _closed_forms as cf
from cdyn.theory import _diskcache as dc

g1, gk = sp.symbols("g_1 g_k", positive=True)


def _counting(folder, monkeypatch):
    """A disk-cached function that counts its real calls, with the cache in `folder`."""
    monkeypatch.setenv("CDYN_CACHE_DIR", str(folder))
    calls = []

    def derive(terms=("pos", "neg"), flag=True):
        calls.append(terms)
        return {"rate": sp.Mul(2, g1 - gk, evaluate=False), "terms": terms, "flag": flag}

    derive.__module__ = "cdyn.theory._test_only"
    return dc.disk_cached(derive), calls


def test_unevaluated_trees_survive_where_pickle_loses_them():
    # 2(g_1 - g_k) as factor_terms leaves it: pickle rebuilds it evaluated (2g_1 - 2g_k).
    e = sp.Mul(2, g1 - gk, evaluate=False)
    assert sp.srepr(pickle.loads(pickle.dumps(e))) != sp.srepr(e)
    back = dc._decode(json.loads(json.dumps(dc._encode(e))))
    assert sp.srepr(back) == sp.srepr(e)


def test_derived_results_round_trip_to_the_same_tree():
    # Real derivations (served from the cache or derived here): every field, symbol assumptions included.
    for value in (theory.decoupled.mode_rho(), cf.kappa_growth_law(), theory.decoupled.decoupled_flow(("pos", "neg")),
                  cf.dlog_kappa_split(("pos", "neg"), True)):
        assert dc._same(dc._decode(json.loads(json.dumps(dc._encode(value)))), value)
    assert not dc._same(sp.Mul(2, g1 - gk, evaluate=False), 2 * g1 - 2 * gk)


def test_miss_then_hit_then_keyword_form_hits(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)
    first = f(("pos", "neg"))
    assert len(calls) == 1 and len(list((tmp_path / "derivations").glob("*.json"))) == 1
    second = f(("pos", "neg"))
    assert len(calls) == 1 and dc._same(second, first)
    f(terms=("pos", "neg"), flag=True)  # the same arguments, passed by keyword and by default
    assert len(calls) == 1
    f(("pos", "wd"))  # other arguments: another entry
    assert len(calls) == 2 and len(list((tmp_path / "derivations").glob("*.json"))) == 2


def test_corrupt_or_foreign_entries_are_rebuilt(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)
    f()
    (entry,) = (tmp_path / "derivations").glob("*.json")
    good = entry.read_text()
    entry.write_text(good[: len(good) // 2])  # truncated
    assert f()["flag"] is True and len(calls) == 2
    assert entry.read_text() == good  # rewritten whole
    record = json.loads(good)
    record["key"] = "0" * 64  # an entry written under another key
    entry.write_text(json.dumps(record))
    f()
    assert len(calls) == 3 and json.loads(entry.read_text())["key"] == entry.stem


def test_a_file_cannot_name_code_to_run(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)
    f()
    (entry,) = (tmp_path / "derivations").glob("*.json")
    record = json.loads(entry.read_text())
    for where in (["os", "system"], ["sympy", "sympify"], ["builtins", "eval"]):
        record["value"] = {"node": where, "args": [{"str": "echo pwned"}]}
        entry.write_text(json.dumps(record))
        with pytest.raises(ValueError):
            dc._decode(record["value"])
        f()  # refused, so a miss: derived again
    assert len(calls) == 4


def test_key_follows_sources_versions_and_registry(monkeypatch):
    base = dc.cache_key("f", ())
    assert dc.cache_key("f", ()) == base and dc.cache_key("g", ()) != base
    assert dc.cache_key("f", (("terms", ("pos",)),)) != base
    monkeypatch.setattr(sp, "__version__", "0.0")
    assert dc.cache_key("f", ()) != base
    monkeypatch.undo()
    dc._sources_digest.cache_clear()
    monkeypatch.setattr(dc, "_THEORY_DIR", dc._THEORY_DIR / "no-such-folder")
    try:
        assert dc.cache_key("f", ()) != base  # other sources (here: none)
    finally:
        monkeypatch.undo()
        dc._sources_digest.cache_clear()
    from cdyn.theory.symbols import W_A, W_B
    theory.register_term("cachetest", sp.Trace(W_A * W_B.T) ** 2)
    try:
        assert dc.cache_key("f", ()) != base  # a registered term changes every key
    finally:
        theory.unregister_term("cachetest")
    assert dc.cache_key("f", ()) == base


def test_off_writes_nothing(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)
    monkeypatch.setenv("CDYN_CACHE_DIR", "off")
    f()
    f()
    assert len(calls) == 2 and not (tmp_path / "derivations").exists()


def test_unwritable_folder_only_costs_the_derivation(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CDYN_CACHE_DIR", str(blocker))  # derivations/ cannot be created under a file
    assert f()["flag"] is True and f()["flag"] is True and len(calls) == 2


def test_values_it_cannot_store_are_not_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("CDYN_CACHE_DIR", str(tmp_path))
    calls = []

    @dc.disk_cached
    def derive():
        calls.append(1)
        return object()

    derive()
    derive()
    assert len(calls) == 2 and not list(tmp_path.rglob("*.json"))


def test_key_follows_the_defining_file_outside_theory(tmp_path, monkeypatch):
    f, calls = _counting(tmp_path, monkeypatch)  # defined here, in tests/: this file's bytes are in its key
    f()
    f()
    assert len(calls) == 1
    monkeypatch.setattr(dc, "_file_digest", lambda path: "the file was edited")
    f()
    assert len(calls) == 2


def test_default_folder_and_no_home(monkeypatch, tmp_path):
    monkeypatch.delenv("CDYN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dc.cache_dir() == tmp_path / "cdyn" / "derivations"
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home():
        raise RuntimeError("Could not determine home directory")

    monkeypatch.setattr(dc.Path, "home", staticmethod(no_home))
    assert dc.cache_dir() is None  # the derivation still runs, uncached
