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


def test_passes_module_produces_numbers_and_report(tmp_path):
    """benchmarks.passes with tiny sizes and no NumPyro: both pplc configurations on both
    centered models, scaling at two small N; the report renders. No timing is asserted."""
    from benchmarks import passes

    res = passes.run(chains=1, warmup=20, draws=20, hier_n=100, hier_groups=5, ns=(50, 100),
                     numpyro=False, log=lambda s: None)
    mcmc, scaling = res["mcmc"], res["scaling"]
    assert [r["system"] for r in mcmc] == ["pplc (passes on)", "pplc (reparameterize off)"] * 2
    assert not [r for r in mcmc + scaling if "error" in r], mcmc + scaling
    for r in mcmc:
        assert r["n_grad_evals"] > 0 and _number(r["exec_s"]) and r["dim"] > 0
        assert isinstance(r["divergences"], int)
    on, off = mcmc[0], mcmc[1]
    assert any("reparameterize" in n and "noncentered" in n for n in on["notes"]), on["notes"]
    assert not any(n.startswith("[reparameterize]") for n in off["notes"]), off["notes"]
    assert [(r["n"], r["system"]) for r in scaling] == [(50, "pplc"), (100, "pplc")]
    for r in scaling:
        for key in ("lower_s", "compile_s", "grad_in_loop_s", "condition_s"):
            assert _number(r[key]) and r[key] > 0, key
        assert r["jaxpr_eqns"] > 0
    assert scaling[0]["jaxpr_eqns"] == scaling[1]["jaxpr_eqns"]  # flat in N

    out = tmp_path / "results_passes.md"
    passes.write(out, machine(), {"seed": 0}, res)
    text = out.read_text()
    assert "| eight_schools_centered | pplc (reparameterize off) |" in text
    assert "| 100 | pplc |" in text and "Load caveat" in text
    assert json.loads(out.with_suffix(".json").read_text())["scaling"]


@pytest.mark.slow
def test_passes_numpyro_side_produces_numbers(tmp_path):
    from benchmarks import passes
    from benchmarks._common import run_worker

    data = passes.write_hier_logistic_data(tmp_path / "hier.json", n=100, groups=5)
    r = run_worker("numpyro_mcmc", {"data": str(data), "numpyro_model": "hier_logistic_centered",
                                    "chains": 1, "warmup": 20, "draws": 20, "x64": True,
                                    "chain_method": "sequential",
                                    "params": ["mu_a", "sigma_a", "alpha", "beta"]})
    assert r["x64"] is True and r["n_grad_evals"] > 0 and r["dim"] == 12
    s = run_worker("numpyro_scaling", {"n": 50, "k": 3})
    assert s["jaxpr_eqns"] > 0 and _number(s["grad_in_loop_s"])
