"""The summary's statistics (`pplc.inference.summary.summarize`) against ArviZ as oracle."""

from __future__ import annotations

import numpy as np
import pytest

from pplc.inference.summary import STAT_KEYS, summarize


def _ar1(rng, chains, draws, shape, rho):
    """AR(1) chains x_t = rho x_{t-1} + e_t: autocorrelated like MCMC draws."""
    x = np.empty((chains, draws) + shape)
    x[:, 0] = rng.normal(size=(chains,) + shape)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=(chains,) + shape)
    return x


@pytest.mark.parametrize("transform", [lambda x: x, np.exp], ids=["gaussian", "lognormal"])
def test_mcse_mean_is_arviz_mcse_of_the_mean(transform):
    import arviz as az

    rng = np.random.default_rng(0)
    draws = transform(_ar1(rng, 4, 500, (3,), rho=0.7))
    summary = summarize({"x": draws})
    expected = np.asarray(az.mcse(az.convert_to_dataset({"x": draws}), method="mean")["x"])
    got = np.array([summary[f"x[{i}]"]["mcse_mean"] for i in range(3)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Not sd / sqrt(bulk ESS): the bulk ESS is rank-normalized, the MCSE's ESS is not.
    if transform is np.exp:
        bulk = np.array([summary[f"x[{i}]"]["sd"] / np.sqrt(summary[f"x[{i}]"]["ess_bulk"])
                         for i in range(3)])
        assert not np.allclose(got, bulk, rtol=1e-3)


def test_every_element_has_every_statistic():
    rng = np.random.default_rng(1)
    summary = summarize({"mu": rng.normal(size=(2, 50)), "X": rng.normal(size=(2, 50, 2, 2))})
    assert list(summary) == ["mu", "X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]"]
    assert all(set(row) == set(STAT_KEYS) for row in summary.values())


def test_a_single_draw_has_no_mcse():
    summary = summarize({"mu": np.zeros((1, 1))})
    assert summary["mu"]["mcse_mean"] is None
