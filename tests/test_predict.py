"""Prediction at new inputs from an existing fit, and fits saved to netCDF and loaded back.

One fit of a small regression (4 chains x 1000 draws) serves every test: predictions at
1000 new rows in-process, from the file in a new process, and through `pplc predict`, each
checked against the draws computed by hand from the fit's parameters; then the mistakes a
user makes (a fit of another model, missing covariates, a file that is not netCDF, sizes
that the parameters depend on) and what cannot be predicted from a fit alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import pplc
from pplc.errors import PplcError
from pplc.inference.posterior import Posterior

SOURCE = """\
data N: int
data K: int
data X: real[N, K]
data y: real[N]
alpha ~ Normal(0, 10)
beta: real[K] ~ Normal(0, 10)
sigma ~ HalfNormal(5)
mu = alpha + X @ beta
y ~ Normal(mu, sigma)
"""
CHAINS, DRAWS = 4, 1000
S = CHAINS * DRAWS


def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 2))


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    model_path = folder / "regression.ppl"
    model_path.write_text(SOURCE)
    X = _rows(60, 0)
    y = 1.0 + X @ np.array([2.0, -1.0]) + 0.5 * np.random.default_rng(1).normal(size=60)
    data = {"N": 60, "K": 2, "X": X.tolist(), "y": y.tolist()}
    model = pplc.compile(model_path)
    conditioned = model.condition(data)
    posterior = conditioned.sample(chains=CHAINS, warmup=500, draws=DRAWS, seed=3)
    fit_path = folder / "fit.nc"
    posterior.to_netcdf(fit_path)
    new_X = _rows(1000, 7)
    new_path = folder / "new.json"
    new_path.write_text(json.dumps({"N": 1000, "K": 2, "X": new_X.tolist()}))
    return {"folder": folder, "model_path": model_path, "model": model, "data": data,
            "conditioned": conditioned, "posterior": posterior, "fit_path": fit_path,
            "new_X": new_X, "new_path": new_path}


def _check_draws_at(X_new, y_rep, posterior):
    """`y_rep` (chain, draw, n) are draws of Normal(alpha + X_new beta, sigma) at each of the
    fit's draws: the standardized residuals z = (y_rep - mean) / sigma, computed by hand
    from the fit's parameters, are independent N(0, 1) given the fit. Over S x n values the
    mean of z has standard error 1 / sqrt(S n) and its variance sqrt(2 / (S n)) (n = 1000,
    S = 4000: 1.6e-5 and 2.2e-5); 4 standard errors bound each. Each row's mean of z over
    the S draws has standard error 1 / sqrt(S) = 0.016, and the largest of 1000 such
    |means| stays under 5 standard errors (a chance of 6e-4 of exceeding it)."""
    mean = posterior["alpha"][..., None] + np.einsum("nk,cdk->cdn", X_new, posterior["beta"])
    z = (y_rep - mean) / posterior["sigma"][..., None]
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert np.abs(z.mean(axis=(0, 1))).max() < 5 / np.sqrt(S)
    # The predictive mean and sd of each row against their values by hand: the mean of
    # the fitted means, and sqrt(var of the means + mean of sigma^2); standard errors as
    # above (the sd's from the variance of a sample variance of near-normal draws).
    sd = np.sqrt(mean.var(axis=(0, 1)) + (posterior["sigma"] ** 2).mean())
    np.testing.assert_array_less(np.abs(y_rep.mean(axis=(0, 1)) - mean.mean(axis=(0, 1))),
                                 5 * sd / np.sqrt(S))
    np.testing.assert_array_less(np.abs(y_rep.std(axis=(0, 1)) - sd), 5 * sd / np.sqrt(2 * S))


def test_predicts_new_rows_leaving_the_observations_out(fit):
    new = fit["model"].condition({"N": 1000, "K": 2, "X": fit["new_X"]})
    posterior = fit["posterior"]
    y_rep = new.posterior_predictive(posterior, seed=5)["y"]
    assert y_rep.shape == (CHAINS, DRAWS, 1000)
    _check_draws_at(fit["new_X"], y_rep, posterior)
    # The fit is left as it was: predictions at other inputs are not its replicates.
    assert posterior.posterior_predictive == {} and posterior.log_likelihood == {}


def test_predictions_carry_the_parameters_and_the_deterministics_at_the_new_inputs(fit):
    new_X = fit["new_X"][:5]
    result = fit["model"].condition({"N": 5, "K": 2, "X": new_X}).predictions(
        fit["posterior"], seed=1)
    posterior = fit["posterior"]
    np.testing.assert_allclose(result["alpha"], posterior["alpha"], rtol=1e-13)
    np.testing.assert_allclose(result["sigma"], posterior["sigma"], rtol=1e-13)
    by_hand = posterior["alpha"][..., None] + np.einsum("nk,cdk->cdn", new_X, posterior["beta"])
    np.testing.assert_allclose(result["mu"], by_hand, rtol=1e-12, atol=1e-12)
    assert result.observed_data == {} and result.log_likelihood == {}
    idata = result.to_arviz()
    assert set(idata.groups()) == {"posterior", "predictions"}
    assert idata.predictions["y"].dims == ("chain", "draw", "N")


def test_a_held_out_set_gets_its_pointwise_log_likelihood(fit):
    new_X = fit["new_X"][:8]
    y_new = 1.0 + new_X @ np.array([2.0, -1.0])
    result = fit["model"].condition({"N": 8, "K": 2, "X": new_X, "y": y_new}).predictions(
        fit["posterior"])
    posterior = fit["posterior"]
    c, d = 2, 123
    mean = posterior["alpha"][c, d] + new_X @ posterior["beta"][c, d]
    np.testing.assert_allclose(result.log_likelihood["y"][c, d],
                               stats.norm(mean, posterior["sigma"][c, d]).logpdf(y_new),
                               rtol=1e-10)
    np.testing.assert_array_equal(result.observed_data["y"], y_new)


def test_same_data_is_still_the_in_sample_predictive(fit):
    """On the fit's own data, posterior_predictive stores its replicates on the fit, from
    the recorded positions (exactly the parameters drawn)."""
    posterior = Posterior.from_netcdf(fit["fit_path"])
    conditioned = fit["model"].condition(fit["data"])
    y_rep = conditioned.posterior_predictive(posterior, seed=2)["y"]
    assert posterior.posterior_predictive["y"] is y_rep
    assert posterior.log_likelihood["y"].shape == (CHAINS, DRAWS, 60)
    _check_draws_at(np.asarray(fit["data"]["X"]), y_rep, posterior)


def test_a_saved_fit_loads_back_whole(fit):
    posterior, loaded = fit["posterior"], Posterior.from_netcdf(fit["fit_path"])
    assert list(loaded.draws) == list(posterior.draws)
    for name in posterior.draws:
        np.testing.assert_array_equal(loaded[name], posterior[name])
    np.testing.assert_array_equal(loaded.attrs["_positions"], posterior.attrs["_positions"])
    assert loaded.roles == posterior.roles and loaded.dims == posterior.dims
    assert loaded.n_grad_evals == posterior.n_grad_evals
    assert loaded.summary() == posterior.summary()
    np.testing.assert_array_equal(loaded.sample_stats["diverging"],
                                  posterior.sample_stats["diverging"])
    np.testing.assert_array_equal(loaded.observed_data["y"], fit["data"]["y"])
    # The file is ArviZ's: its reader sees the usual groups and the positions.
    import arviz as az
    idata = az.from_netcdf(fit["fit_path"])
    assert {"posterior", "sample_stats", "observed_data",
            "unconstrained_posterior"} <= set(idata.groups())


def test_constrain_draws_gives_the_draws_sample_returned(fit):
    """`constrain_draws` maps unconstrained positions (chains, draws, dim) to the model's
    named draws: on the positions `sample` recorded, the draws `sample` returned, latents
    and the deterministic alike; sigma is exp of its own column (a positive latent's log
    transform) and mu is alpha + X beta by hand; positions of another shape are refused,
    not reshaped."""
    posterior, conditioned = fit["posterior"], fit["conditioned"]
    positions = posterior.attrs["_positions"]
    draws = conditioned.constrain_draws(positions)
    assert set(draws) == set(posterior.draws) == {"alpha", "beta", "sigma", "mu"}
    for name, value in draws.items():
        np.testing.assert_array_equal(value, posterior[name])
    sigma = next(b for b in conditioned.lowered.layout if b.name == "sigma")
    np.testing.assert_allclose(draws["sigma"], np.exp(positions[..., sigma.offset]),
                               rtol=1e-14)
    X = np.asarray(fit["data"]["X"])
    np.testing.assert_allclose(draws["mu"], draws["alpha"][..., None]
                               + np.einsum("nk,cdk->cdn", X, draws["beta"]), rtol=1e-12,
                               atol=1e-12)
    some = conditioned.constrain_draws(positions[1:3, 5:9])   # any chains and draws
    np.testing.assert_array_equal(some["beta"], posterior["beta"][1:3, 5:9])
    for wrong in (positions[0], positions[..., :-1]):
        with pytest.raises(PplcError, match=rf"shape \(chains, draws, {conditioned.dim}\)"):
            conditioned.constrain_draws(wrong)


def test_a_loaded_fit_continues(fit):
    """Continuing starts each chain at the fit's last draw: with a short warmup the new
    draws agree with the fit (|difference of means| < 5 x the combined MCSE)."""
    loaded = Posterior.from_netcdf(fit["fit_path"])
    conditioned = fit["conditioned"]
    starts = conditioned._continue_from(loaded, 6)
    np.testing.assert_array_equal(starts[:4], loaded.attrs["_positions"][:, -1])
    np.testing.assert_array_equal(starts[4:], loaded.attrs["_positions"][:2, -2])
    more = conditioned.sample(chains=2, warmup=100, draws=500, seed=9, init=loaded)
    first, again = loaded.summary()["beta[0]"], more.summary()["beta[0]"]
    assert abs(first["mean"] - again["mean"]) < 5 * np.hypot(first["mcse_mean"],
                                                             again["mcse_mean"])


def test_a_new_process_predicts_from_the_saved_fit(fit):
    """A fresh interpreter loads the file and predicts with the same seed: the same draws
    as in this process (the parameters are read back exactly)."""
    out = fit["folder"] / "pred_in_new_process.npy"
    script = textwrap.dedent(f"""
        import numpy as np, pplc
        posterior = pplc.load({str(fit["fit_path"])!r})
        model = pplc.compile({str(fit["model_path"])!r})
        new = model.condition({str(fit["new_path"])!r})
        np.save({str(out)!r}, new.posterior_predictive(posterior, seed=11)["y"])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    in_process = fit["model"].condition({"N": 1000, "K": 2, "X": fit["new_X"]}) \
        .posterior_predictive(fit["posterior"], seed=11)["y"]
    np.testing.assert_array_equal(np.load(out), in_process)
    _check_draws_at(fit["new_X"], np.load(out), fit["posterior"])


def _pplc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pplc.cli", *map(str, args)],
                          capture_output=True, text=True)


def _pplc_here(*args) -> subprocess.CompletedProcess:
    """`pplc ...` through the CLI's main in this process, as a finished process: the same
    status and messages, without a process's imports (issue 16 item 7). The real command
    still predicts (test_pplc_predict_writes_the_predictions) and refuses a user's mistake
    (test_a_file_that_is_not_netcdf_is_refused)."""
    from pplc.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(["pplc", *argv], code, out.getvalue(), err.getvalue())


def test_pplc_predict_writes_the_predictions(fit):
    out = fit["folder"] / "pred.nc"
    result = _pplc("predict", fit["model_path"], "--data", fit["new_path"], "--draws",
                   fit["fit_path"], "-o", out, "--seed", 11)
    assert result.returncode == 0, result.stderr
    assert "predictions written to" in result.stdout
    import arviz as az
    idata = az.from_netcdf(out)
    assert {"posterior", "predictions"} <= set(idata.groups())
    y_rep = idata.predictions["y"].values
    assert y_rep.shape == (CHAINS, DRAWS, 1000)
    in_process = fit["model"].condition({"N": 1000, "K": 2, "X": fit["new_X"]}) \
        .posterior_predictive(fit["posterior"], seed=11)["y"]
    np.testing.assert_array_equal(y_rep, in_process)
    assert idata.posterior["mu"].shape == (CHAINS, DRAWS, 1000)
    # Predictions load back as a Posterior too.
    assert Posterior.from_netcdf(out).posterior_predictive["y"].shape == y_rep.shape


def test_counts_that_cannot_be_latents_are_still_predicted():
    """Leaving a Poisson `y` out would make it a latent that NUTS cannot sample: the model
    conditioned on the new inputs predicts it, and refuses to be sampled. Given the fit's
    draws, y_rep - lambda has mean 0 and variance mean(lambda) / S per row (Poisson), so
    each row's mean is within 5 standard errors of the mean rate by hand."""
    source = """\
data N: int
data x: real[N]
data y: int[N]
a ~ Normal(0, 1)
b ~ Normal(0, 1)
y ~ Poisson(exp(a + b * x))
"""
    model = pplc.compile(source)
    x = np.linspace(-1, 1, 40)
    y = np.random.default_rng(0).poisson(np.exp(0.5 + 0.8 * x))
    posterior = model.condition({"N": 40, "x": x, "y": y}).sample(chains=2, warmup=300,
                                                                   draws=500, seed=1)
    x_new = np.array([-2.0, 0.0, 1.5])
    new = model.condition({"N": 3, "x": x_new})
    y_rep = new.posterior_predictive(posterior, seed=4)["y"]
    assert y_rep.shape == (2, 500, 3) and np.all(y_rep == np.round(y_rep)) and y_rep.min() >= 0
    rate = np.exp(posterior["a"][..., None] + posterior["b"][..., None] * x_new)
    draws = rate.shape[0] * rate.shape[1]
    np.testing.assert_array_less(np.abs(y_rep.mean(axis=(0, 1)) - rate.mean(axis=(0, 1))),
                                 5 * np.sqrt(rate.mean(axis=(0, 1)) / draws))
    with pytest.raises(PplcError, match="latent discrete variable"):
        new.sample()


# ---------------------------------------------------------------- mistakes


@pytest.fixture(scope="module")
def other_fit(tmp_path_factory):
    """A fit of another model (one latent, theta), saved."""
    path = tmp_path_factory.mktemp("other") / "other.nc"
    other = pplc.compile("data y: real[3]\ntheta ~ Normal(0, 1)\ny ~ Normal(theta, 1)\n")
    other.condition({"y": [0.1, 0.2, 0.3]}).sample(chains=1, warmup=50, draws=20).to_netcdf(path)
    return path


def _expect_user_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "error:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_fit_of_another_model_is_refused(fit, other_fit):
    new = fit["model"].condition({"N": 3, "K": 2, "X": fit["new_X"][:3]})
    with pytest.raises(PplcError, match="'theta'.*another model"):
        new.posterior_predictive(Posterior.from_netcdf(other_fit))
    result = _pplc_here("predict", fit["model_path"], "--data", fit["new_path"], "--draws",
                        other_fit, "-o", fit["folder"] / "never.nc")
    _expect_user_error(result, "another model", "hint:")
    assert not (fit["folder"] / "never.nc").exists()


def test_missing_covariates_are_named(fit):
    with pytest.raises(PplcError, match="data 'X' is declared but not supplied"):
        fit["model"].condition({"N": 3, "K": 2})
    no_x = fit["folder"] / "no_x.json"
    no_x.write_text('{"N": 3, "K": 2}')
    result = _pplc_here("predict", fit["model_path"], "--data", no_x, "--draws",
                        fit["fit_path"], "-o", fit["folder"] / "never.nc")
    _expect_user_error(result, "'X'")


def test_a_file_that_is_not_netcdf_is_refused(fit):
    with pytest.raises(PplcError, match="not a netCDF file"):
        Posterior.from_netcdf(fit["new_path"])
    with pytest.raises(PplcError, match="cannot read"):
        Posterior.from_netcdf(fit["folder"] / "absent.nc")
    result = _pplc("predict", fit["model_path"], "--data", fit["new_path"], "--draws",
                   fit["new_path"], "-o", fit["folder"] / "never.nc")
    _expect_user_error(result, "not a netCDF file", "hint:")


def test_sizes_the_parameters_depend_on_must_stay_the_fits(fit):
    new = fit["model"].condition({"N": 2, "K": 3, "X": np.ones((2, 3))})
    with pytest.raises(PplcError, match=r"'beta' has shape \(2,\) in the fit but \(3,\)"):
        new.posterior_predictive(fit["posterior"])


def test_predictive_refuses_to_store_predictions_at_other_data_on_the_fit(fit):
    new = fit["model"].condition({"N": 3, "K": 2, "X": fit["new_X"][:3]})
    with pytest.raises(PplcError, match="fitted to other data"):
        new.predictive(fit["posterior"])


def test_what_a_fit_alone_cannot_predict_is_refused():
    """A series that reads its own lags needs simulating step by step, and an observation
    that another reads cannot be drawn alone: both are refused, at the statement."""
    source = """\
data T: int
data y: real[T]
phi ~ Uniform(-1, 1)
y[0] ~ Normal(0, 1)
for t in range(1, T):
    y[t] ~ Normal(phi * y[t - 1], 1)
"""
    model = pplc.compile(source)
    posterior = model.condition({"T": 5, "y": [0.0, 0.5, 0.2, -0.1, 0.3]}).sample(
        chains=1, warmup=50, draws=20)
    with pytest.raises(PplcError, match="reads its own earlier elements"):
        model.condition({"T": 8}).posterior_predictive(posterior)
    # z reads y: leaving y out, predicting it from the fit alone would need its values.
    model = pplc.compile("data y: real[2]\ndata z: real[2]\nmu ~ Normal(0, 1)\n"
                         "y ~ Normal(mu, 1)\nz ~ Normal(y, 1)\n")
    posterior = model.condition({"y": [0.1, 0.2], "z": [0.3, 0.1]}).sample(
        chains=1, warmup=50, draws=20)
    with pytest.raises(PplcError, match="'z' reads it"):
        model.condition({"z": [0.3, 0.1]}).posterior_predictive(posterior)


def test_observations_folded_into_a_sum_are_predicted_not_dropped():
    """A mixture's y is summed over z by the marginalization: at new inputs it is drawn
    with each new unit's z (inference/test_summed_out_predictive.py checks the values),
    never answered with no draws."""
    mixture = Path(__file__).resolve().parents[1] / "examples" / "gaussian_mixture"
    model = pplc.compile(mixture / "model.ppl")
    posterior = model.condition(mixture / "data.json").sample(chains=1, warmup=100, draws=20)
    K = json.loads((mixture / "data.json").read_text())["K"]
    predicted = model.condition({"N": 3, "K": K}).posterior_predictive(posterior)
    assert predicted["y"].shape == (1, 20, 3) and np.isfinite(predicted["y"]).all()
