"""`cdyn` starts without matplotlib: figures import it when they are drawn (~0.8 s of every start)."""

from __future__ import annotations

import subprocess
import sys


def test_command_modules_do_not_import_matplotlib():
    code = ("import sys\n"
            "import cdyn._derive_cmd, cdyn._simulate_cmd, cdyn._verify_cmd, cdyn._train_cmd, cdyn._sweep_cmd\n"
            "import cdyn._report\n"
            "print(sorted(m for m in sys.modules if m == 'matplotlib' or m.startswith('matplotlib.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
