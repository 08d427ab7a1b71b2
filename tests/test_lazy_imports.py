"""Heavy libraries are imported only by the runs that need them (issue 16, item 5).

diffrax (with equinox) costs about a second of import: no run imports it (`ode` has its
own solver, runtime/tsit5.py). ArviZ and xarray: only writing ArviZ's container (`--output`) needs them; the
summary's diagnostics are pplc's own (inference/convergence.py).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CODE = """
import sys, json
import numpy as np
import pplc
m = pplc.compile({model!r}).condition({data!r})
m.unconstrained_log_density(np.zeros(m.dim))
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}} & {{"diffrax", "arviz", "xarray"}})))
"""


def _imported(example: str) -> list[str]:
    folder = ROOT / "examples" / example
    code = _CODE.format(model=str(folder / "model.ppl"), data=str(folder / "data.json"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_model_without_an_ode_never_imports_diffrax():
    assert _imported("eight_schools") == []


def test_a_model_with_an_ode_does_not_either():
    assert _imported("damped_oscillator") == []


def test_pplc_sample_without_output_imports_neither_arviz_nor_xarray(tmp_path):
    code = ("import runpy, sys, atexit\n"
            "atexit.register(lambda: print('MODULES', sorted({m.split('.')[0] for m in sys.modules}"
            " & {'arviz', 'xarray', 'diffrax'}), file=sys.stderr))\n"
            "sys.argv = ['pplc'] + sys.argv[1:]\n"
            "runpy.run_module('pplc.cli', run_name='__main__')\n")
    folder = ROOT / "examples" / "eight_schools"
    out = subprocess.run([sys.executable, "-c", code, "sample", str(folder / "model.ppl"),
                          "--data", str(folder / "data.json"), "--chains", "1", "--warmup",
                          "50", "--draws", "50", "--quiet", "--no-cache",
                          "--summary", str(tmp_path / "s.json")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MODULES []" in out.stderr, out.stderr[-2000:]


def test_pplc_sample_with_output_writes_arviz_groups_without_importing_arviz(tmp_path):
    """ArviZ's import (its plots: SciPy, matplotlib) costs 2-3 CPU-s, and writing its groups
    needs only xarray and h5netcdf (inference/saved.py): `--output` imports neither ArviZ,
    SciPy nor matplotlib, and ArviZ reads the file it writes."""
    import arviz

    code = ("import runpy, sys, atexit\n"
            "atexit.register(lambda: print('MODULES', sorted({m.split('.')[0] for m in sys.modules}"
            " & {'arviz', 'scipy', 'matplotlib'}), file=sys.stderr))\n"
            "sys.argv = ['pplc'] + sys.argv[1:]\n"
            "runpy.run_module('pplc.cli', run_name='__main__')\n")
    folder = ROOT / "examples" / "eight_schools"
    path = tmp_path / "fit.nc"
    out = subprocess.run([sys.executable, "-c", code, "sample", str(folder / "model.ppl"),
                          "--data", str(folder / "data.json"), "--chains", "2", "--warmup",
                          "50", "--draws", "30", "--quiet", "--metric", "diag",
                          "--output", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MODULES []" in out.stderr, out.stderr[-2000:]
    data = arviz.from_netcdf(path)
    assert {"posterior", "sample_stats", "observed_data"} <= set(data.groups())
    assert data.posterior["theta"].shape == (2, 30, 8)
    assert data.posterior.attrs["inference_library"] == "pplc"
