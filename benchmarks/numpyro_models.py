"""The benchmark models written in NumPyro, matching the .ppl models term for term.

Priors and parameterizations follow the .ppl sources exactly, so both systems sample the same
posterior (the suite's density check evaluates both log densities at random points and
compares their differences): eight schools noncentered (theta = theta_trans * tau + mu,
deterministic) and centered as written; hierarchical logistic centered as written
(examples/hierarchical_logistic); linear regression (Normal(0, 10) on alpha and beta,
HalfNormal(5) on sigma); the 100-d Gaussian (benchmarks/models/corr_gaussian.ppl);
stochastic volatility noncentered (examples/stochastic_volatility/model_noncentered.ppl);
the Union2.1 supernovae with the same 32-node Gauss-Legendre rule pplc's `integrate` uses;
the 3-component mixture with its assignments enumerated (funsor) or, where funsor is
missing, summed by `MixtureSameFamily`; the damped oscillator through diffrax's Tsit5 with
the tolerances, controller and adjoint of pplc's `ode`.

Each model is the idiomatic vectorized NumPyro form (one sample site per array, not a Python
loop of scalar sites, which NumPyro would trace site by site).
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
    """Varying intercepts, centered as written: a[j] ~ Normal(mu_a, sigma_a); shared
    slopes. The likelihood is NumPyro's idiomatic vectorized form (one site over the N
    rows), not a Python loop of N sample sites (which NumPyro would trace site by site)."""
    import numpyro
    import numpyro.distributions as dist

    K = X.shape[1]
    mu_a = numpyro.sample("mu_a", dist.Normal(0.0, 2.5))
    sigma_a = numpyro.sample("sigma_a", dist.HalfNormal(2.0))
    a = numpyro.sample("a", dist.Normal(mu_a, sigma_a).expand([G]).to_event(1))
    beta = numpyro.sample("beta", dist.Normal(0.0, 2.5).expand([K]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=a[g] + X @ beta).to_event(1), obs=y)


def linear_regression(X, y=None):
    import numpyro
    import numpyro.distributions as dist

    K = X.shape[1]
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
    numpyro.sample("y", dist.Normal(alpha + X @ beta, sigma).to_event(1), obs=y)


def corr_gaussian(L):
    import numpyro
    import numpyro.distributions as dist

    numpyro.sample("x", dist.MultivariateNormal(np.zeros(L.shape[0]), scale_tril=L))


def stochastic_volatility_noncentered(T, y=None):
    """h[0] = mu + sigma / sqrt(1 - phi^2) h_std[0], h[t] = mu + phi (h[t-1] - mu)
    + sigma h_std[t] (a `lax.scan`), y ~ Normal(0, exp(h / 2))."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Cauchy(0.0, 10.0))
    phi = numpyro.sample("phi", dist.Uniform(-1.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(5.0))
    h_std = numpyro.sample("h_std", dist.Normal(0.0, 1.0).expand([T]).to_event(1))
    h0 = mu + sigma / jnp.sqrt(1 - phi**2) * h_std[0]

    def step(prev, z):
        h = mu + phi * (prev - mu) + sigma * z
        return h, h

    _, rest = jax.lax.scan(step, h0, h_std[1:])
    h = numpyro.deterministic("h", jnp.concatenate([h0[None], rest]))
    numpyro.sample("y", dist.Normal(0.0, jnp.exp(h / 2)).to_event(1), obs=y)


GAUSS_LEGENDRE_NODES = 32  # pplc's `integrate` default on a finite range


def supernova(z, mu_err, mu=None):
    """Flat LambdaCDM: D_L = (1 + z) (c / H0) int_0^z dx / E(x), E(x) = sqrt(Om (1 + x)^3
    + 1 - Om); mu ~ Normal(5 log10(D_L) + 25, mu_err)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    H0 = numpyro.sample("H0", dist.Uniform(50.0, 100.0))
    Om = numpyro.sample("Om", dist.Uniform(0.0, 1.0))
    t, w = np.polynomial.legendre.leggauss(GAUSS_LEGENDRE_NODES)
    x = z[None, :] / 2 * (1 + t[:, None])                     # nodes on [0, z], per SN
    inv_e = 1 / jnp.sqrt(Om * (1 + x) ** 3 + 1 - Om)
    integral = z / 2 * jnp.tensordot(w, inv_e, axes=1)
    d_l = (1 + z) * (299792.458 / H0) * integral
    numpyro.sample("mu", dist.Normal(5 * jnp.log10(d_l) + 25, mu_err).to_event(1), obs=mu)


def has_funsor() -> bool:
    import importlib.util

    return importlib.util.find_spec("funsor") is not None


def gaussian_mixture(K, y=None):
    """w ~ Dirichlet(1), mu ordered with Normal(0, 10) terms, sigma ~ HalfNormal(5);
    z[n] ~ Categorical(w) enumerated in parallel, y[n] ~ Normal(mu[z[n]], sigma)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    w = numpyro.sample("w", dist.Dirichlet(jnp.ones(K)))
    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (K,)))
    numpyro.factor("mu_prior", dist.Normal(0.0, 10.0).log_prob(mu).sum())
    sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
    with numpyro.plate("data", y.shape[0]):
        if has_funsor():
            z = numpyro.sample("z", dist.Categorical(w), infer={"enumerate": "parallel"})
            numpyro.sample("y", dist.Normal(mu[z], sigma), obs=y)
        else:  # the same sum over z, written by hand
            numpyro.sample("y", dist.MixtureSameFamily(dist.Categorical(w),
                                                       dist.Normal(mu, sigma)), obs=y)


def damped_oscillator(ts, x=None):
    """x'' + 2 zeta w x' + w^2 x = 0 from (1, 0), solved as pplc's `ode` solves it."""
    import diffrax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    zeta = numpyro.sample("zeta", dist.Beta(2.0, 8.0))
    w = numpyro.sample("w", dist.LogNormal(0.5, 0.5))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.5))

    def field(t, state, args):
        zeta, w = args
        return jnp.stack([state[1], -2 * zeta * w * state[1] - w**2 * state[0]])

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t0=0.0, t1=ts[-1], dt0=None,
        y0=jnp.array([1.0, 0.0]), args=(zeta, w), saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
        adjoint=diffrax.RecursiveCheckpointAdjoint(), max_steps=4096, throw=False)
    path = jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)
    numpyro.sample("x", dist.Normal(path[:, 0], sigma).to_event(1), obs=x)


def _arrays(data: dict, **kinds) -> dict:
    """The data entries named in `kinds` as NumPy arrays (float / int64) or ints."""
    cast = {"f": lambda v: np.asarray(v, float), "i": lambda v: np.asarray(v, np.int64),
            "n": int}
    return {key: cast[kind](data[key]) for key, kind in kinds.items()}


MODELS = {
    "eight_schools_noncentered": (eight_schools_noncentered, dict(J="n", sigma="f", y="f")),
    "eight_schools_centered": (eight_schools_centered, dict(J="n", sigma="f", y="f")),
    "hier_logistic_centered": (hier_logistic_centered, dict(g="i", X="f", G="n", y="f")),
    "linear_regression": (linear_regression, dict(X="f", y="f")),
    "corr_gaussian": (corr_gaussian, dict(L="f")),
    "stochastic_volatility_noncentered": (stochastic_volatility_noncentered,
                                          dict(T="n", y="f")),
    "supernova": (supernova, dict(z="f", mu_err="f", mu="f")),
    "gaussian_mixture": (gaussian_mixture, dict(K="n", y="f")),
    "damped_oscillator": (damped_oscillator, dict(ts="f", x="f")),
}


def model_and_kwargs(name: str, data: dict):
    """(NumPyro model function, keyword arguments) for pplc's JSON data of model `name`."""
    fn, kinds = MODELS[name]
    return fn, _arrays(data, **kinds)
