"""The notebooks of examples/ are stored without outputs and run top to bottom without error,
in a kernel started from this interpreter (so they use the code under test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the `test` extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the `test` extra installs nbclient")
pytest.importorskip("ipykernel", reason="the `test` extra installs ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
KERNEL = "cdyn-test-python"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec whose argv is this interpreter, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cdyn test", "language": "python"}))
    return root


def test_reprs_are_one_line_and_say_what_matters():
    import numpy as np

    from cdyn import numerics
    from cdyn import theory

    p = numerics.Problem(A=np.diag([2.0, 1.0]), B=np.eye(2), A_xi=0.1 * np.eye(2), B_xi=0.1 * np.eye(2), m=2)
    assert repr(p) == "Problem(d_A=2, d_B=2, r=2, m=2, λ=1, noise=isotropic 0.1)"
    assert repr(p.replace(A_xi=None, mu=0.5)) == \
        "Problem(d_A=2, d_B=2, r=2, m=2, λ=1, μ=0.5, noise_A=none, noise_B=isotropic 0.1)"
    traj = numerics.integrate(p, *numerics.random_init(p, 0.1, 0), 1.0, n_points=11, path="full", method="DOP853")
    assert repr(traj) == "Trajectory(terms=pos+neg, path=full, method=DOP853, status=completed, 11 samples, t_end=1)"
    flow = theory.gradient_flow(("pos", "neg"))
    assert repr(flow) == "GradientFlow(pos + neg: L = -tr(W_A C W_Bᵀ) + λ · tr(W_A Σ_A W_Aᵀ W_B Σ_B W_Bᵀ)/2)"
    for obj in (flow, theory.structured_flow(("pos",)), theory.reduced_flow(("pos", "neg")), theory.batch_term("pos"),
                theory.decoupled.decoupled_flow(("pos", "neg"))):
        assert "\n" not in repr(obj) and len(repr(obj)) < 100
        assert obj._repr_latex_().startswith("$$") and obj.latex() in obj._repr_markdown_()


def test_there_are_at_least_three_examples():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 3, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs) + json.dumps([o.get("data", {}) for o in outputs])
    assert "^{T}" not in texts  # one notation: \top everywhere
    if path.stem.startswith("01"):
        assert r"\top" in texts and "ν" in texts and r"\nu" in texts and r"\documentclass{article}" in texts
    if path.stem.startswith("02"):
        assert any("image/png" in o.get("data", {}) for o in outputs)
    if path.stem.startswith("03"):
        assert "VAR1        verified" in texts and "VAR1-false  falsified" in texts
