"""The benchmark models written in PyMC, for nutpie: the same priors, parameterizations and
data as the .ppl models and their NumPyro twins (benchmarks/numpyro_models.py).

nutpie samples a PyMC model through its compiled PyTensor log density (numba backend), so
each model is the idiomatic vectorized PyMC form. Deterministic sites (theta, h) are
`pm.Deterministic`, so nutpie stores them and the suite's ESS covers the same elements as
for pplc. The suite's density check compares each twin's log density with pplc's, as for
NumPyro, so a twin that drifts from its .ppl model is caught, not benchmarked.

The damped oscillator has no twin: PyMC's ODE solver calls SciPy's odeint, which neither
numba nor nutpie can compile, so nutpie cannot run that model at all (the suite says so).
"""

from __future__ import annotations

import numpy as np

from benchmarks.numpyro_models import GAUSS_LEGENDRE_NODES


def eight_schools_noncentered(pm, J, sigma, y):
    theta_trans = pm.Normal("theta_trans", 0.0, 1.0, shape=J)
    mu = pm.Normal("mu", 0.0, 5.0)
    tau = pm.HalfCauchy("tau", 5.0)
    theta = pm.Deterministic("theta", theta_trans * tau + mu)
    pm.Normal("y", theta, sigma, observed=y)


def eight_schools_centered(pm, J, sigma, y):
    tau = pm.HalfCauchy("tau", 5.0)
    mu = pm.Normal("mu", 0.0, 5.0)
    theta = pm.Normal("theta", mu, tau, shape=J)
    pm.Normal("y", theta, sigma, observed=y)


def hier_logistic_centered(pm, g, X, G, y):
    mu_a = pm.Normal("mu_a", 0.0, 2.5)
    sigma_a = pm.HalfNormal("sigma_a", 2.0)
    a = pm.Normal("a", mu_a, sigma_a, shape=G)
    beta = pm.Normal("beta", 0.0, 2.5, shape=X.shape[1])
    pm.Bernoulli("y", logit_p=a[g] + pm.math.dot(X, beta), observed=y)


def linear_regression(pm, X, y):
    alpha = pm.Normal("alpha", 0.0, 10.0)
    beta = pm.Normal("beta", 0.0, 10.0, shape=X.shape[1])
    sigma = pm.HalfNormal("sigma", 5.0)
    pm.Normal("y", alpha + pm.math.dot(X, beta), sigma, observed=y)


def corr_gaussian(pm, L):
    pm.MvNormal("x", mu=np.zeros(L.shape[0]), chol=L)


def stochastic_volatility_noncentered(pm, T, y):
    """The recursion as a `pytensor.scan` (what PyMC users write; PERFORMANCE.md measured
    nutpie's numba scan at 28x the JAX gradient floor on this model)."""
    import pytensor
    import pytensor.tensor as pt

    mu = pm.Cauchy("mu", 0.0, 10.0)
    phi = pm.Uniform("phi", -1.0, 1.0)
    sigma = pm.HalfCauchy("sigma", 5.0)
    h_std = pm.Normal("h_std", 0.0, 1.0, shape=T)
    h0 = mu + sigma / pt.sqrt(1 - phi**2) * h_std[0]
    # the parameters go in as non_sequences: a scan body that closes over random
    # variables leaves them in PyMC's log-density graph, which PyMC refuses
    rest = pytensor.scan(lambda z, prev, mu, phi, sigma: mu + phi * (prev - mu) + sigma * z,
                         sequences=[h_std[1:]], outputs_info=[h0],
                         non_sequences=[mu, phi, sigma], return_updates=False)
    h = pm.Deterministic("h", pt.concatenate([h0[None], rest]))
    pm.Normal("y", 0.0, pt.exp(h / 2), observed=y)


def supernova(pm, z, mu_err, mu):
    import pytensor.tensor as pt

    H0 = pm.Uniform("H0", 50.0, 100.0)
    Om = pm.Uniform("Om", 0.0, 1.0)
    t, w = np.polynomial.legendre.leggauss(GAUSS_LEGENDRE_NODES)
    x = z[None, :] / 2 * (1 + t[:, None])                     # nodes on [0, z], per SN
    inv_e = 1 / pt.sqrt(Om * (1 + x) ** 3 + 1 - Om)
    integral = z / 2 * pt.tensordot(w, inv_e, axes=1)
    d_l = (1 + z) * (299792.458 / H0) * integral
    pm.Normal("mu", 5 * pt.log10(d_l) + 25, mu_err, observed=mu)


def gaussian_mixture(pm, K, y):
    """`mu: ordered[K] ~ Normal(0, 10)`: Normal terms on an ordered vector; the
    assignments summed out by `NormalMixture`, as pplc marginalizes them."""
    w = pm.Dirichlet("w", np.ones(K))
    mu = pm.Normal("mu", 0.0, 10.0, shape=K, transform=pm.distributions.transforms.ordered,
                   initval=np.linspace(-1.0, 1.0, K))
    sigma = pm.HalfNormal("sigma", 5.0)
    pm.NormalMixture("y", w=w, mu=mu, sigma=sigma, observed=y)


def _arrays(data: dict, **kinds) -> dict:
    cast = {"f": lambda v: np.asarray(v, float), "i": lambda v: np.asarray(v, np.int64),
            "n": int}
    return {key: cast[kind](data[key]) for key, kind in kinds.items()}


MODELS = {  # keyed like benchmarks.numpyro_models.MODELS
    "eight_schools_noncentered": (eight_schools_noncentered, dict(J="n", sigma="f", y="f")),
    "eight_schools_centered": (eight_schools_centered, dict(J="n", sigma="f", y="f")),
    "hier_logistic_centered": (hier_logistic_centered, dict(g="i", X="f", G="n", y="i")),
    "linear_regression": (linear_regression, dict(X="f", y="f")),
    "corr_gaussian": (corr_gaussian, dict(L="f")),
    "stochastic_volatility_noncentered": (stochastic_volatility_noncentered,
                                          dict(T="n", y="f")),
    "supernova": (supernova, dict(z="f", mu_err="f", mu="f")),
    "gaussian_mixture": (gaussian_mixture, dict(K="n", y="f")),
}

NO_TWIN = {"damped_oscillator": "PyMC's ODE solver calls SciPy's odeint, which nutpie "
                                "cannot compile"}


def build(name: str, data: dict):
    """The PyMC model `name` (a key of MODELS) on pplc's JSON data."""
    import pymc as pm

    fn, kinds = MODELS[name]
    with pm.Model() as model:
        fn(pm, **_arrays(data, **kinds))
    return model
