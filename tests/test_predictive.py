"""Posterior predictive draws and the pointwise log-likelihood (ArviZ's LOO input)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import pplc

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "linear_regression"


def _sample_here(*args) -> subprocess.CompletedProcess:
    """`pplc sample ...` through the CLI's main in this process, as a finished process. The
    files it writes are the point of these tests; a process of its own paid the imports and
    compiled again what this process had (issue 16 item 7). The real command writes its
    groups in test_cli_prior_writes_prior_groups_with_the_model_dims and tests/test_cli.py."""
    from pplc.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["sample", *map(str, args)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(["pplc", *argv], code, out.getvalue(), err.getvalue())


def test_pointwise_log_likelihood_and_predictive_draws():
    model = pplc.compile(EXAMPLE / "model.ppl").condition(EXAMPLE / "data.json")
    posterior = model.sample(chains=2, warmup=300, draws=300, seed=3)
    model.predictive(posterior, seed=3)
    y = np.asarray(model.lowered.data.arrays["y"])
    X = np.asarray(model.lowered.data.arrays["X"])
    log_lik = posterior.log_likelihood["y"]
    assert log_lik.shape == (2, 300, 100)
    # Each element is log Normal(y_i | alpha + X_i beta, sigma) at that draw (float64).
    c, d = 1, 17
    mean = posterior["alpha"][c, d] + X @ posterior["beta"][c, d]
    np.testing.assert_allclose(log_lik[c, d], stats.norm(mean, posterior["sigma"][c, d])
                               .logpdf(y), rtol=1e-10)
    # Predictive draws: their mean over draws is the fitted mean, their spread sigma plus
    # parameter uncertainty. With 600 draws the MCSE of a draw-mean is about sd / 24.5.
    y_rep = posterior.posterior_predictive["y"]
    assert y_rep.shape == (2, 300, 100)
    fitted = posterior["alpha"][..., None] + np.einsum("nk,cdk->cdn", X, posterior["beta"])
    np.testing.assert_array_less(np.abs(y_rep.mean(axis=(0, 1)) - fitted.mean(axis=(0, 1))),
                                 5 * 0.7 / np.sqrt(600))
    import arviz as az
    loo = az.loo(posterior.to_arviz())
    assert np.isfinite(loo.elpd_loo) and 3 < loo.p_loo < 8  # 5 parameters


def test_cli_predict_writes_the_arviz_groups(tmp_path):
    out = tmp_path / "draws.nc"
    result = _sample_here(EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json", "--chains",
                          2, "--warmup", 200, "--draws", 200, "--predict", "--output", out,
                          "--quiet")
    assert result.returncode == 0, result.stderr
    import arviz as az
    idata = az.from_netcdf(out)
    for group in ("posterior", "sample_stats", "observed_data", "posterior_predictive",
                  "log_likelihood", "log_prior", "unconstrained_posterior"):
        assert group in idata.groups(), group


def test_prior_predictive_by_forward_simulation():
    """Eight schools' priors: mu ~ Normal(0, 5), tau ~ HalfCauchy(5); y | theta ~ Normal.
    4000 independent draws: the MCSE of mu's mean is 5 / sqrt(4000) = 0.08; tau's median
    (5 for a half-Cauchy of scale 5) has a standard error of about 0.12."""
    source = """\
data J: int
data y: real[J]
data sigma: positive[J]
mu ~ Normal(0, 5)
tau ~ HalfCauchy(5)
for j in range(J):
    theta[j] ~ Normal(mu, tau)
    y[j] ~ Normal(theta[j], sigma[j])
"""
    model = pplc.compile(source).condition({"J": 3, "y": [1.0, 2.0, 3.0],
                                            "sigma": [1.0, 2.0, 3.0]})
    prior = model.prior_predictive(draws=4000, seed=0)
    assert set(prior) == {"mu", "tau", "theta", "y"} and prior["y"].shape == (4000, 3)
    assert abs(prior["mu"].mean()) < 4 * 0.08
    assert abs(prior["mu"].std() - 5) < 4 * 5 / np.sqrt(2 * 4000)
    assert abs(np.median(prior["tau"]) - 5) < 4 * 0.12
    # y - theta ~ Normal(0, sigma): the residual sd is sigma exactly in distribution.
    np.testing.assert_allclose((prior["y"] - prior["theta"]).std(axis=0), [1.0, 2.0, 3.0],
                               rtol=4 / np.sqrt(2 * 4000))


def test_posterior_predictive_and_sample_prior_in_the_api():
    model = pplc.compile(EXAMPLE / "model.ppl").condition(EXAMPLE / "data.json")
    posterior = model.sample(chains=2, warmup=200, draws=100, seed=1)
    replicated = model.posterior_predictive(posterior, seed=1)
    assert replicated["y"].shape == (2, 100, 100)
    assert posterior.posterior_predictive["y"] is replicated["y"]
    prior = model.sample_prior(draws=500, seed=2)
    assert prior.prior and prior["beta"].shape == (1, 500, 3)
    # sigma ~ HalfNormal(5): its prior mean is 5 * sqrt(2 / pi) = 3.99, sd 3.01; 500 draws
    # give an MCSE of 0.135, so 0.6 is more than 4 MCSE.
    assert abs(prior["sigma"].mean() - 5 * np.sqrt(2 / np.pi)) < 0.6
    idata = prior.to_arviz()
    assert set(idata.groups()) >= {"prior", "prior_predictive"}


def test_multivariate_observations_get_one_log_likelihood_per_event():
    source = """
data N: int
data K: int
data y: real[N, K]
mu ~ Normal(0, 5)
for n in range(N):
    y[n] ~ MultivariateNormal(mu * ones(K), diag(ones(K)))
"""
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 1.0, size=(6, 3))
    model = pplc.compile(source).condition({"N": 6, "K": 3, "y": y.tolist()})
    posterior = model.sample(chains=1, warmup=200, draws=50, seed=0)
    model.predictive(posterior)
    log_lik = posterior.log_likelihood["y"]
    assert log_lik.shape == (1, 50, 6)
    mu = posterior["mu"][0, 7]
    expected = stats.multivariate_normal(np.full(3, mu), np.eye(3)).logpdf(y)
    np.testing.assert_allclose(log_lik[0, 7], expected, rtol=1e-10)
    assert posterior.posterior_predictive["y"].shape == (1, 50, 6, 3)


def test_cli_prior_writes_prior_groups_with_the_model_dims(tmp_path):
    eight = EXAMPLE.parent / "eight_schools"
    out = tmp_path / "prior.nc"
    result = subprocess.run([sys.executable, "-m", "pplc.cli", "sample", str(eight / "model.ppl"),
                             "--data", str(eight / "data.json"), "--prior", "--draws", "100",
                             "--output", str(out), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import arviz as az
    idata = az.from_netcdf(out)
    assert set(idata.groups()) == {"prior", "prior_predictive"}
    assert idata.prior["theta"].dims == ("chain", "draw", "J")
    assert idata.prior_predictive["y"].dims == ("chain", "draw", "J")
    assert idata.prior["theta"].shape == (1, 400, 8)   # 4 chains x 100 draws, as one


def test_log_prior_of_each_latent_in_the_users_parameterization():
    """The log_prior group holds each latent's prior term at each draw, no Jacobian:
    eight schools' theta is sampled noncentered, yet its log prior is sum_j log
    Normal(theta_j | mu, tau) of the user's statement. ArviZ's power-scaling sensitivity
    reads the group."""
    eight = EXAMPLE.parent / "eight_schools"
    model = pplc.compile(eight / "model.ppl").condition(eight / "data.json")
    assert any(v.internal for v in model.graph.variables())   # noncentered by the pass
    posterior = model.sample(chains=2, warmup=300, draws=200, seed=4)
    model.predictive(posterior, seed=4)
    log_prior = posterior.log_prior
    assert set(log_prior) == {"mu", "tau", "theta"}
    mu, tau, theta = posterior["mu"], posterior["tau"], posterior["theta"]
    np.testing.assert_allclose(log_prior["mu"], stats.norm(0, 5).logpdf(mu), rtol=1e-12)
    np.testing.assert_allclose(log_prior["tau"], stats.halfcauchy(scale=5).logpdf(tau),
                               rtol=1e-12)
    np.testing.assert_allclose(log_prior["theta"], stats.norm(mu[..., None], tau[..., None])
                               .logpdf(theta).sum(axis=-1), rtol=1e-10)
    import arviz as az
    idata = posterior.to_arviz()
    assert idata.log_prior["theta"].dims == ("chain", "draw")
    sensitivity = az.psens(idata, component="prior")
    assert all(np.all(np.isfinite(sensitivity[name].values)) for name in ("mu", "tau"))


def test_a_marginalized_model_is_replicated_and_what_cannot_be_split_is_said(tmp_path):
    """A mixture's y is folded into the sum over z: `sample --predict` still writes its
    replicates and pointwise log-likelihood (inference/summed_out_likelihood.py) beside the
    log prior. Two observed variables read by one assignment get replicates, but no
    pointwise term each (their terms at n are one sum): the API says so."""
    mixture = EXAMPLE.parent / "gaussian_mixture"
    out = tmp_path / "mixture.nc"
    result = _sample_here(mixture / "model.ppl", "--data", mixture / "data.json", "--chains", 1,
                          "--warmup", 100, "--draws", 50, "--predict", "--output", out,
                          "--quiet")
    assert result.returncode == 0, result.stderr
    assert "no posterior predictive" not in result.stderr, result.stderr
    import arviz as az
    idata = az.from_netcdf(out)
    assert {"log_prior", "log_likelihood", "posterior_predictive"} <= set(idata.groups())
    assert "y" in idata.log_likelihood and "y" in idata.posterior_predictive
    two = pplc.compile("""\
data N: int
data a: real[N]
data b: real[N]
mu: ordered[2] ~ Normal(0, 5)
for n in range(N):
    z[n] ~ Bernoulli(0.5)
    a[n] ~ Normal(mu[z[n]], 1.0)
    b[n] ~ Normal(mu[z[n]], 2.0)
""").condition({"N": 4, "a": [-1.0, 0.5, 2.0, 2.5], "b": [-2.0, 0.0, 1.5, 3.0]})
    posterior = two.sample(chains=1, warmup=100, draws=30, seed=0, progress=False)
    with pytest.warns(RuntimeWarning, match="no pointwise log-likelihood for 'a', 'b'"):
        two.predictive(posterior)
    assert set(posterior.posterior_predictive) == {"a", "b"}
    assert posterior.posterior_predictive["b"].shape == (1, 30, 4)
    assert not posterior.log_likelihood
