"""pplc's R-hat and ESS (inference/convergence.py) against ArviZ's, the oracle they copy.

ArviZ is imported here only as an oracle: the summary no longer imports it. The cases
cover what a summary meets: independent and autocorrelated chains, chains that disagree,
ties (a discrete quantity), an odd number of draws (split chains drop the middle one),
one chain, a constant, heavy tails and very short chains. Agreement is to rounding
(1e-10 relative): the arithmetic is the same, term for term, only summed in another order.
"""

import numpy as np
import pytest

from pplc.inference import convergence

az = pytest.importorskip("arviz")
xr = pytest.importorskip("xarray")
scipy_stats = pytest.importorskip("scipy.stats")


def _ar1(rng, chains, n, phi):
    x = np.zeros((chains, n))
    noise = rng.normal(size=(chains, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _cases():
    rng = np.random.default_rng(0)
    return {
        "independent": rng.normal(size=(4, 1000)),
        "autocorrelated": _ar1(rng, 4, 1000, 0.9),
        "chains disagree, odd draws": _ar1(rng, 2, 501, 0.5) + np.arange(2)[:, None],
        "ties (Poisson)": rng.poisson(2, size=(4, 300)).astype(float),
        "one chain": _ar1(rng, 1, 1000, 0.3),
        "heavy tails": rng.standard_cauchy(size=(3, 200)),
        "rare event indicator": (rng.uniform(size=(4, 400)) < 0.1).astype(float),
        "very short": _ar1(rng, 4, 7, 0.2),
        "constant": np.ones((4, 100)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_rhat_and_ess_equal_arviz(name):
    draws = _cases()[name]
    data = xr.Dataset({"x": (("chain", "draw"), draws)})
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = {
            "rhat": float(az.rhat(data)["x"]) if draws.shape[0] > 1 else np.nan,
            "bulk": float(az.ess(data, method="bulk")["x"]),
            "tail": float(az.ess(data, method="tail")["x"]),
            "mean": float(az.ess(data, method="mean")["x"]),
        }
        got = {"rhat": convergence.rhat(draws), "bulk": convergence.ess_bulk(draws),
               "tail": convergence.ess_tail(draws), "mean": convergence.ess_mean(draws)}
    for key in expected:
        if np.isnan(expected[key]):
            assert np.isnan(got[key]), (key, got[key])
        else:
            assert got[key] == pytest.approx(expected[key], rel=1e-10), key


def test_a_nan_draw_gives_nan():
    draws = np.random.default_rng(1).normal(size=(4, 100))
    draws[2, 50] = np.nan
    assert np.isnan(convergence.rhat(draws)) and np.isnan(convergence.ess_bulk(draws))
    assert np.isnan(convergence.ess_tail(draws)) and np.isnan(convergence.ess_mean(draws))


def test_normal_quantile_matches_scipy_to_rounding():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(size=20000), [1e-300, 1e-20, 1e-10, 0.5, 0.425 + 0.5,
                                                   0.075, 1 - 1e-16]])
    expected = scipy_stats.norm.ppf(p)
    assert np.max(np.abs(convergence.ndtri(p) - expected) / np.maximum(1.0, np.abs(expected))) < 1e-14


def test_the_summary_imports_neither_arviz_nor_xarray():
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from pplc.inference.summary import summarize\n"
            "s = summarize({'mu': np.random.default_rng(0).normal(size=(4, 200))})\n"
            "assert 'arviz' not in sys.modules and 'xarray' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('arviz', 'xarray'))\n"
            "print(s['mu']['ess_bulk'])\n")
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) > 100
