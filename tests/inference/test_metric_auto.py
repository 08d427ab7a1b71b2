"""`--metric auto` / `metric="auto"`: the rule, the option, and the choice reported.

The rule is `inference.metric.choose_metric` (low-rank from 2 to AUTO_MAX_DIM parameters,
else Stan's diag; benchmarks/metric_adaptation.md has the measurements behind it); a run
records the metric it used in `attrs["metric"]` and `pplc sample` prints it in the header.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from pplc.errors import PplcError
from pplc.inference.metric import AUTO_MAX_DIM, choose_metric
from pplc.options import check_options, parse_text

REPO = Path(__file__).resolve().parents[2]


def test_the_auto_rule_and_that_explicit_metrics_pass_through():
    assert choose_metric("auto", 1) == "diag"
    assert choose_metric("auto", 2) == "low-rank"
    assert choose_metric("auto", AUTO_MAX_DIM) == "low-rank"
    assert choose_metric("auto", AUTO_MAX_DIM + 1) == "diag"
    for metric in ("diag", "dense", "diag-grad", "low-rank"):
        assert choose_metric(metric, 50) == metric


def test_auto_is_an_option_of_the_api_and_the_cli():
    assert check_options(metric="auto") == {"metric": "auto"}
    assert parse_text("metric", "auto") == "auto"
    with pytest.raises(PplcError):
        check_options(metric="automatic")


def test_pplc_sample_reports_the_metric_auto_chose():
    # eight schools as written: 10 parameters, so auto runs low-rank.
    model = REPO / "examples" / "eight_schools"
    result = subprocess.run(
        [sys.executable, "-m", "pplc.cli", "sample", str(model / "model.ppl"), "--data",
         str(model / "data.json"), "--metric", "auto", "--chains", "2", "--warmup", "100",
         "--draws", "50", "--quiet", "--chain-method", "sequential"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 chains x 50 draws, metric low-rank (auto)" in result.stdout


def test_a_low_rank_run_from_a_warm_compile_cache_runs(tmp_path):
    # The second run loads the chunk program from the compile cache without lowering it;
    # its LAPACK calls (eigh) then need metric.ensure_lapack, else the process died with
    # SIGSEGV (rc -11). Fails with the call in adaptation.initial_chain_state taken out.
    import os

    model = REPO / "examples" / "eight_schools"
    env = dict(os.environ, PPLC_CACHE_DIR=str(tmp_path / "cache"))
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "pplc.cli", "sample", str(model / "model.ppl"), "--data",
             str(model / "data.json"), "--metric", "low-rank", "--chains", "1", "--warmup", "30",
             "--draws", "10", "--quiet", "--chain-method", "sequential"],
            capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
        assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
