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


def test_pplc_sample_reports_the_metric_auto_chose(capsys):
    # eight schools as written: 10 parameters, so auto runs low-rank. Through the CLI's
    # main in this process (what `python -m pplc.cli` runs): the header is the point, and a
    # process of its own paid ~4 CPU-s of imports (issue 16 item 7); the real command runs
    # below (the warm-cache test) and in tests/test_cli.py.
    from pplc.cli import main

    model = REPO / "examples" / "eight_schools"
    status = main(["sample", str(model / "model.ppl"), "--data", str(model / "data.json"),
                   "--metric", "auto", "--chains", "2", "--warmup", "100", "--draws", "50",
                   "--quiet", "--chain-method", "sequential"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "2 chains x 50 draws, metric auto: " in out.out   # what it kept: test_metric_report


def test_auto_keeps_the_diagonal_where_no_direction_departs_from_it():
    # Why a chain under auto runs the diagonal on an uncorrelated posterior: the low-rank
    # estimate keeps only eigen-directions of the diagonally scaled draw/gradient pair whose
    # variance departs from 1 by more than DEFAULT_CUTOFF. On independent Gaussian draws with
    # exact gradients the only departure is Stan's shrinkage of the diagonal, (n + 5) / n
    # in every direction (1.5 at the first 10-draw window, benchmarks/adaptation.md), so a
    # cutoff of 2 keeps nothing at any window length of the low-rank schedule and the metric
    # is the Fisher diagonal; a cutoff under (n + 5) / n would keep every direction spanned.
    import jax.numpy as jnp
    import numpy as np

    from pplc.inference.metric import DEFAULT_CUTOFF, fisher_diagonal, fisher_low_rank

    assert DEFAULT_CUTOFF > 1.5
    rng = np.random.default_rng(0)
    dim = 12
    sd = np.exp(rng.normal(size=dim) * 2.0)
    for n in (10, 20, 40, 80, 160, 630):
        x = rng.normal(size=(n, dim)) * sd
        cx, cg = np.cov(x.T), np.cov((-x / sd**2).T)
        inv, diag, _, lam = fisher_low_rank(jnp.asarray(cx), jnp.asarray(cg), n)
        assert np.all(np.asarray(lam) == 1.0), n
        expected = fisher_diagonal(jnp.asarray(np.diag(cx)), jnp.asarray(np.diag(cg)), n)
        np.testing.assert_allclose(np.asarray(inv), np.diag(np.asarray(expected)), rtol=1e-9, atol=0)
        kept = fisher_low_rank(jnp.asarray(cx), jnp.asarray(cg), n, cutoff=1.0 + 2.5 / n)[3]
        # (every direction the n draws span: n - 1 of them while n <= dim)
        assert np.sum(np.asarray(kept) != 1.0) >= min(n - 1, dim), n


def test_auto_is_the_default_metric_of_the_api_and_the_cli():
    import inspect

    from pplc.cli import build_parser
    from pplc.conditioned import ConditionedModel

    assert inspect.signature(ConditionedModel.sample).parameters["metric"].default == "auto"
    args = build_parser().parse_args(["sample", "m.ppl", "--data", "d.json"])
    assert args.metric == "auto"


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
