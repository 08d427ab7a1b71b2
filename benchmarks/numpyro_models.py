"""The benchmark models written in NumPyro, matching the .ppl models term for term.

Priors and parameterizations follow the .ppl sources exactly (eight schools: noncentered,
theta = theta_trans * tau + mu deterministic, or centered as written; hierarchical
logistic: centered varying intercepts, as `benchmarks.passes` writes it; linear regression: Normal(0, 10) on alpha
and beta, HalfNormal(5) on sigma), so both systems sample the same posterior.
"""

from __future__ import annotations

import numpy as np


def eight_schools_noncentered(J, sigma, y=None):
    import numpyro
    import numpyro.distributions as dist

    theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0).expand([J]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.deterministic("theta", theta_trans * tau + mu)
    numpyro.sample("y", dist.Normal(theta, sigma).to_event(1), obs=y)


def eight_schools_centered(J, sigma, y=None):
    """As posteriordb's eight_schools_centered.stan is written: theta ~ Normal(mu, tau)."""
    import numpyro
    import numpyro.distributions as dist

    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([J]).to_event(1))
    numpyro.sample("y", dist.Normal(theta, sigma).to_event(1), obs=y)


def hier_logistic_centered(g, X, G, y=None):
    """Varying intercepts, centered as written: alpha[j] ~ Normal(mu_a, sigma_a); shared
    slopes. The likelihood is NumPyro's idiomatic vectorized form (one site over the N
    rows), not a Python loop of N sample sites (which NumPyro would trace site by site)."""
    import numpyro
    import numpyro.distributions as dist

    K = X.shape[1]
    mu_a = numpyro.sample("mu_a", dist.Normal(0.0, 2.5))
    sigma_a = numpyro.sample("sigma_a", dist.HalfNormal(2.0))
    alpha = numpyro.sample("alpha", dist.Normal(mu_a, sigma_a).expand([G]).to_event(1))
    beta = numpyro.sample("beta", dist.Normal(0.0, 2.5).expand([K]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=alpha[g] + X @ beta).to_event(1), obs=y)


def linear_regression(X, y=None):
    import numpyro
    import numpyro.distributions as dist

    K = X.shape[1]
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
    numpyro.sample("y", dist.Normal(alpha + X @ beta, sigma).to_event(1), obs=y)


def model_and_kwargs(name: str, data: dict):
    """(NumPyro model function, keyword arguments) for pplc's JSON data of model `name`."""
    if name == "eight_schools_noncentered":
        return eight_schools_noncentered, {"J": int(data["J"]),
                                           "sigma": np.asarray(data["sigma"], float),
                                           "y": np.asarray(data["y"], float)}
    if name == "eight_schools_centered":
        return eight_schools_centered, {"J": int(data["J"]),
                                        "sigma": np.asarray(data["sigma"], float),
                                        "y": np.asarray(data["y"], float)}
    if name == "hier_logistic_centered":
        return hier_logistic_centered, {"g": np.asarray(data["g"], np.int64),
                                        "X": np.asarray(data["X"], float), "G": int(data["G"]),
                                        "y": np.asarray(data["y"], float)}
    if name == "linear_regression":
        return linear_regression, {"X": np.asarray(data["X"], float),
                                   "y": np.asarray(data["y"], float)}
    raise KeyError(name)
