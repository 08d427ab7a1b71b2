"""NUTS through the whole pipeline recovers posteriors someone else computed.

Closed forms (conjugate models); posteriordb's reference posteriors are in
test_conformance.py.

Tolerances come from the Monte Carlo standard error: for a posterior mean,
MCSE = sd / sqrt(ESS_bulk), and |estimate - truth| < 4 MCSE fails by chance with
probability about 6e-5 per check (normal tail); for a posterior sd, the MCSE of the sd of
Gaussian draws is about sd / sqrt(2 ESS), with the same factor 4. Seeds are fixed, so a
pass is reproducible; the tolerances say why it is not luck.
"""

from __future__ import annotations

import numpy as np

import pplc


def _check_mean_sd(draws: np.ndarray, ess: float, mean: float, sd: float, name: str):
    est_mean, est_sd = float(np.mean(draws)), float(np.std(draws, ddof=1))
    mcse_mean = sd / np.sqrt(ess)
    mcse_sd = sd / np.sqrt(2 * ess)
    assert abs(est_mean - mean) < 4 * mcse_mean, (name, est_mean, mean, mcse_mean)
    assert abs(est_sd - sd) < 4 * mcse_sd, (name, est_sd, sd, mcse_sd)


def test_conjugate_normal_mean_known_scale():
    """mu ~ Normal(m0, s0), x_i ~ Normal(mu, s): mu | x is Normal with precision-weighted
    mean and variance 1 / (1/s0^2 + n/s^2)."""
    rng = np.random.default_rng(11)
    n, s, m0, s0 = 20, 2.0, 1.0, 3.0
    x = rng.normal(4.0, s, size=n)
    model = pplc.compile(f"""
data N: int
data x: real[N]
mu ~ Normal({m0}, {s0})
x ~ Normal(mu, {s})
""").condition({"N": n, "x": x.tolist()})
    precision = 1 / s0**2 + n / s**2
    post_mean = (m0 / s0**2 + x.sum() / s**2) / precision
    post_sd = precision ** -0.5
    posterior = model.sample(chains=4, warmup=500, draws=1000, seed=3)
    summary = posterior.summary()
    _check_mean_sd(posterior["mu"], summary["mu"]["ess_bulk"], post_mean, post_sd, "mu")
    assert summary["mu"]["r_hat"] < 1.01
    assert posterior.divergences == 0


def test_bayesian_linear_regression_known_noise():
    """beta ~ Normal(0, tau I), y ~ Normal(X beta, s I): beta | y is Normal with covariance
    (X'X / s^2 + I / tau^2)^-1 and mean Sigma X'y / s^2."""
    rng = np.random.default_rng(5)
    n, k, s, tau = 50, 3, 0.5, 2.0
    X = rng.normal(size=(n, k))
    y = X @ np.array([1.0, -2.0, 0.5]) + s * rng.normal(size=n)
    model = pplc.compile(f"""
data N: int
data K: int
data X: real[N, K]
data y: real[N]
beta: real[K] ~ Normal(0, {tau})
y ~ Normal(X @ beta, {s})
""").condition({"N": n, "K": k, "X": X.tolist(), "y": y.tolist()})
    cov = np.linalg.inv(X.T @ X / s**2 + np.eye(k) / tau**2)
    mean = cov @ X.T @ y / s**2
    posterior = model.sample(chains=4, warmup=500, draws=1000, seed=4)
    summary = posterior.summary()
    for i in range(k):
        name = f"beta[{i}]"
        _check_mean_sd(posterior["beta"][..., i], summary[name]["ess_bulk"], mean[i],
                       np.sqrt(cov[i, i]), name)
    # The posterior correlation is recovered too (MCSE of a correlation r is about
    # (1 - r^2) / sqrt(ESS)).
    draws = posterior["beta"].reshape(-1, k)
    r_true = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    r_est = np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]
    ess = min(summary["beta[0]"]["ess_bulk"], summary["beta[1]"]["ess_bulk"])
    assert abs(r_est - r_true) < 4 * (1 - r_true**2) / np.sqrt(ess)
