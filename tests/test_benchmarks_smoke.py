"""Smoke test of the benchmark harness (benchmarks/): it runs and produces numbers and files.

Tiny sizes (2 chains, 30 warmup + 30 draws, the smallest model), every configuration still in
a fresh process. No timing is asserted: timings on a shared CI machine mean nothing. The
NumPyro side (about 20 s per process: NumPyro compiles some 80 programs even for a tiny run)
and the scaling and cold/warm parts are marked slow. `--quick` runs NumPyro with one chain
method and at one N of the scaling: a second method is the same worker with one option
changed, and crediting NumPyro with the better method is checked on made-up rows.
"""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not installed

from benchmarks import best_peer, coldwarm, plots, results, suite  # noqa: E402
from benchmarks._common import machine  # noqa: E402

SMALLEST = "eight_schools_noncentered"


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _quiet(_message):
    pass


def test_suite_pplc_side_produces_numbers_and_report(tmp_path):
    settings = suite.Settings(chains=2, warmup=30, draws=30, seeds=(0,), numpyro=False,
                              peers=(), models=(SMALLEST,))
    res = suite.run(settings, tmp_path, quick=True, log=_quiet)
    (row,) = res["rows"]
    assert "error" not in row, row
    for key in ("first_run_s", "compiled_run_s", "exec_s", "ess_per_grad", "ms_per_grad",
                "grad_in_loop_s", "peak_rss_mb"):
        assert _number(row[key]) and row[key] > 0, key
    assert row["n_grad_evals"] > 0 and isinstance(row["divergences"], int)
    assert row["compiled_run_xla"]["compiles"] == 0  # pplc reuses its compiled programs

    summary = suite.summarize(res["rows"])
    assert _number(summary[0]["pplc"]["overhead"])
    text = results.render(machine(), {**vars(settings), "elapsed_s": {"suite": 1.0}},
                          summary, res["density"], [], [])
    assert f"| {SMALLEST} | pplc |" in text and "## Targets" in text
    png = plots.plot_ratios(summary, tmp_path / "results.png")
    assert png.stat().st_size > 0


def _figures(ess_per_s, first_run_s, ess_per_grad):
    return {"ess_per_s": ess_per_s, "first_run_s": first_run_s, "compiled_run_s": 1.0,
            "ess_per_grad": ess_per_grad}


def test_best_peer_is_chosen_per_figure_and_a_missing_peer_is_left_out():
    """No processes: the comparison itself, on made-up figures."""
    entry = {"pplc": _figures(100.0, 10.0, 0.02),
             "peers": {"NumPyro": _figures(50.0, 20.0, 0.03),
                       "BlackJAX": _figures(80.0, 5.0, 0.01),
                       "nutpie": {}}}                      # did not run this model
    best = best_peer.compare(entry)
    assert (best["ess_per_s"]["peer"], best["ess_per_s"]["ratio"]) == ("BlackJAX", 1.25)
    assert (best["first_run_s"]["peer"], best["first_run_s"]["ratio"]) == ("BlackJAX", 2.0)
    assert best["ess_per_grad"]["peer"] == "NumPyro"
    assert best_peer.compare({"pplc": _figures(1, 1, 1), "peers": {}})["ess_per_s"][
        "peer"] is None
    assert math.isclose(best_peer.geomean([2.0, 0.5, math.nan]), 1.0)
    entry.update(model=SMALLEST, best_peer=best, skipped={"nutpie": "no twin"})
    text = "\n".join(best_peer.section([entry]))
    assert f"| {SMALLEST} | **1.25** (BlackJAX) | **2.00** (BlackJAX) |" in text
    assert "nutpie not: no twin" in text and "geometric mean ≥ 1.5×: **not met**" in text


def _run_row(system, ess_per_s, first_run_s, divergences):
    return {"model": SMALLEST, "system": system, "seed": 0, "ess_per_s": ess_per_s,
            "first_run_s": first_run_s, "divergences": divergences}


def test_numpyro_is_credited_with_the_better_of_its_two_methods_figure_by_figure():
    """No processes: the full run's NumPyro vectorized and sequential rows, made up. (The
    quick run below runs one method: both are the same worker mode but for one option.)"""
    rows = [_run_row("pplc", 100.0, 10.0, 0),
            _run_row("NumPyro vectorized", 50.0, 20.0, 3),
            _run_row("NumPyro sequential", 80.0, 30.0, 1)]
    (entry,) = suite.summarize(rows)
    numpyro = entry["numpyro"]
    assert numpyro["method"] == "sequential"                # the better ESS/s
    assert numpyro["ess_per_s"] == 80.0 and numpyro["first_run_s"] == 20.0
    assert numpyro["divergences"] == 1                      # lower is better
    assert entry["numpyro_methods"]["vectorized"]["first_run_s"] == 20.0
    assert math.isclose(entry["ratios"]["ess_per_s"], 100.0 / 80.0)
    assert math.isclose(entry["ratios"]["first_run_s"], 10.0 / 20.0)


def _installed_peers():
    from benchmarks.__main__ import installed_peers

    return installed_peers(required=False)


@pytest.mark.slow
def test_whole_quick_run_with_numpyro(tmp_path):
    """`python -m benchmarks --quick`: suite (both systems), cold/warm and scaling, files.
    NumPyro runs one chain method and one N of the scaling here (`--quick`); the full run
    runs both methods and every N."""
    from benchmarks.__main__ import main

    assert main(["--quick", "--output-dir", str(tmp_path)]) == 0
    raw = json.loads((tmp_path / "results.json").read_text())
    rows = raw["suite"]["rows"]
    peers = _installed_peers()  # BlackJAX and nutpie run where installed (`make bench`)
    assert {r["system"] for r in rows} == {"pplc", "NumPyro vectorized", *peers}
    assert not [r for r in rows if "error" in r], rows
    density = raw["suite"]["density"][SMALLEST]
    assert density["max_abs_diff"] < 1e-8  # the NumPyro twin is the same density
    if "nutpie" in peers:  # and so is the PyMC twin nutpie samples
        assert raw["suite"]["density_pymc"][SMALLEST]["max_abs_diff"] < 1e-8
    if peers:
        assert "## pplc against the best peer" in (tmp_path / "results.md").read_text()
    # "no cache" is left out of the quick run: it compiles what "cache, cold" compiles
    assert [r["mode"] for r in raw["coldwarm"]] == ["cache, cold", "cache, warm"]
    assert [m for m, _ in coldwarm.MODES[1:]] == ["cache, cold", "cache, warm"]
    assert raw["coldwarm"][0]["cache_files"] > 0   # the cold run filled the cache
    assert not [r for r in raw["coldwarm"] + raw["scaling"] if "error" in r]
    assert [(r["system"], r["n"]) for r in raw["scaling"]] == [
        ("pplc", 100), ("NumPyro", 100), ("pplc", 1000)]
    # The pplc program does not grow with N (N = 100 and 1000 here): checked on this run's
    # scaling rows rather than in two more fresh processes of a test of its own.
    pplc_rows = sorted((r for r in raw["scaling"] if r["system"] == "pplc"), key=lambda r: r["n"])
    assert [r["n"] for r in pplc_rows] == [100, 1000]
    assert pplc_rows[0]["jaxpr_eqns"] == pplc_rows[1]["jaxpr_eqns"]
    assert all(_number(r["grad_in_loop_s"]) for r in pplc_rows)
    for name in ("results.md", "results.png", "scaling.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| eight_schools_noncentered | 4 |" in (tmp_path / "results.md").read_text()
