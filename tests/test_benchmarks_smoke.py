"""Smoke test of the benchmark harness (benchmarks/): it runs and produces numbers and files.

Tiny sizes (1 chain, 20 warmup, a few draws, N=50); no timing is asserted, since timings
on a shared CI machine mean nothing. Each configuration still runs in a fresh process.
"""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not installed

from benchmarks import overhead, report, startup  # noqa: E402
from benchmarks._common import MODELS, machine  # noqa: E402


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_pplc_startup_and_overhead_produce_numbers(tmp_path):
    name = "eight_schools_noncentered"
    rows = startup.run({name: MODELS[name]}, chains=1, warmup=20, draws=5, numpyro=False,
                       log=lambda s: None)
    assert [r["system"] for r in rows] == ["pplc CLI", "pplc API", "pplc breakdown"]
    assert not [r for r in rows if "error" in r], rows
    for r in rows:
        assert _number(r["process_wall_s"]) and r["process_wall_s"] > 0
    api = rows[1]
    assert api["total_xla"]["compiles"] > 0 and _number(api["first_draw_at_s"])
    assert api["second_xla"]["compiles"] >= 0
    assert _number(rows[2]["sampler_compile_s"])

    ov = overhead.run(n=50, k=3, chains=1, warmup=20, draws=20, methods=("sequential",),
                      numpyro=False, log=lambda s: None)
    (r,) = ov
    assert "error" not in r, r
    for key in ("exec_s", "grad_in_loop_s", "grad_call_median_s", "overhead_in_loop",
                "overhead_py_call"):
        assert _number(r[key]) and r[key] > 0, key
    assert r["n_grad_evals"] > 0

    out = tmp_path / "results.md"
    out.write_text(report.render(machine(), {"seed": 0}, rows, ov))
    text = out.read_text()
    assert "| eight_schools_noncentered | pplc API |" in text
    assert "pplc sequential" in text


@pytest.mark.slow
def test_numpyro_side_produces_numbers(tmp_path):
    """NumPyro compiles about 120 programs even for a tiny run (about 10 s per process)."""
    from benchmarks._common import run_worker, write_linreg_data

    data = write_linreg_data(tmp_path / "data.json", n=50, k=3)
    r = run_worker("numpyro_overhead", {"data": str(data), "numpyro_model": "linear_regression",
                                        "chains": 1, "warmup": 20, "draws": 20,
                                        "chain_method": "sequential", "x64": True})
    assert r["x64"] is True
    assert r["n_grad_evals"] > 0 and _number(r["grad_in_loop_s"]) and r["cold_xla"]["compiles"] > 0
    json.dumps(r)
