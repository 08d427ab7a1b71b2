"""The compiled log density equals NumPyro's, Jacobians included, on whole models.

NumPyro is an independent oracle here (a test dependency only). For each model we write
the same model in NumPyro, map pplc's flat unconstrained vector to NumPyro's
unconstrained sites (both use Stan's transforms: exp, logistic, affine-logistic), and
compare `-potential_energy` with pplc's unconstrained log density at random points; the
constrained joint density (no Jacobian) is compared too. 1e-6 relative: both are float64
sums of the same terms, so only rounding separates them.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc

numpyro = pytest.importorskip("numpyro")
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer.util import log_density as np_log_density  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def conformance(name: str) -> tuple[Path, dict]:
    folder = CONFORMANCE / name
    if not folder.exists():
        pytest.skip(f"conformance folder {CONFORMANCE} is absent (it lives in ../shared)")
    return folder / "model.ppl", json.loads((folder / "data.json").read_text())


# ---------------------------------------------------------------- NumPyro twins

def eight_schools_noncentered(J, y, sigma):
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([J]))
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    numpyro.sample("y", dist.Normal(theta_trans * tau + mu, jnp.asarray(sigma)), obs=jnp.asarray(y))


def eight_schools_centered(J, y, sigma):
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([J]))
    numpyro.sample("y", dist.Normal(theta, jnp.asarray(sigma)), obs=jnp.asarray(y))


def garch(T, y, sigma1):
    y = jnp.asarray(y)
    mu = numpyro.sample("mu", dist.Uniform(-100, 100))
    alpha0 = numpyro.sample("alpha0", dist.Uniform(0, 100))
    alpha1 = numpyro.sample("alpha1", dist.Uniform(0, 1))
    beta1 = numpyro.sample("beta1", dist.Uniform(0, 1 - alpha1))
    numpyro.factor("f", jnp.log(1 - alpha1))
    sigma = [jnp.asarray(sigma1, float)]
    for t in range(1, T):
        sigma.append(jnp.sqrt(alpha0 + alpha1 * (y[t - 1] - mu) ** 2 + beta1 * sigma[-1] ** 2))
    numpyro.sample("y", dist.Normal(mu, jnp.stack(sigma)), obs=y)


def ark(K, T, y):
    y = jnp.asarray(y)
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([K]))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    lags = jnp.stack([y[K - k - 1:T - k - 1] for k in range(K)], axis=1)
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def kidiq(N, kid_score, mom_hs, mom_iq):
    mom_hs, mom_iq = jnp.asarray(mom_hs), jnp.asarray(mom_iq)
    beta = numpyro.sample("beta", dist.Uniform(-1000, 1000).expand([4]))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    mean = beta[0] + beta[1] * mom_hs + beta[2] * mom_iq + beta[3] * mom_hs * mom_iq
    numpyro.sample("kid_score", dist.Normal(mean, sigma), obs=jnp.asarray(kid_score))


def blr(N, D, X, y):
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([D]))
    sigma = numpyro.sample("sigma", dist.HalfNormal(10))
    numpyro.sample("y", dist.Normal(jnp.asarray(X) @ beta, sigma), obs=jnp.asarray(y))


def linear_regression(N, K, X, y):
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([K]))
    sigma = numpyro.sample("sigma", dist.HalfNormal(5))
    numpyro.sample("y", dist.Normal(alpha + jnp.asarray(X) @ beta, sigma), obs=jnp.asarray(y))


POISSON_CHAIN = """
A ~ Normal(0, 1)
B ~ LogNormal(0, 1)
C ~ LogNormal(A, B)
X ~ Poisson(C)
"""


def poisson_chain(X):
    a = numpyro.sample("A", dist.Normal(0, 1))
    b = numpyro.sample("B", dist.LogNormal(0, 1))
    c = numpyro.sample("C", dist.LogNormal(a, b))
    numpyro.sample("X", dist.Poisson(c), obs=jnp.asarray(X))


ZOO = """
data N: int
data counts: int[N]
data trials: int[N]
data flags: int[N]
data t: real[N]
rate ~ Gamma(2.0, 3.0)
p ~ Beta(2, 5)
w ~ Exponential(1.5)
nu ~ Uniform(1, 30)
loc ~ StudentT(4, 0, 2)
s ~ LogNormal(0, 0.5)
c ~ Cauchy(0, 1)
for n in range(N):
    counts[n] ~ Poisson(rate * (n + 1))
    trials[n] ~ Binomial(10, p)
    flags[n] ~ Bernoulli(logits=loc + c * t[n])
t ~ StudentT(nu, loc, s + w)
"""


def zoo(N, counts, trials, flags, t):
    rate = numpyro.sample("rate", dist.Gamma(2.0, 3.0))
    p = numpyro.sample("p", dist.Beta(2, 5))
    w = numpyro.sample("w", dist.Exponential(1.5))
    nu = numpyro.sample("nu", dist.Uniform(1, 30))
    loc = numpyro.sample("loc", dist.StudentT(4, 0, 2))
    s = numpyro.sample("s", dist.LogNormal(0, 0.5))
    c = numpyro.sample("c", dist.Cauchy(0, 1))
    t = jnp.asarray(t)
    numpyro.sample("counts", dist.Poisson(rate * (jnp.arange(N) + 1)), obs=jnp.asarray(counts))
    numpyro.sample("trials", dist.Binomial(10, p), obs=jnp.asarray(trials))
    numpyro.sample("flags", dist.Bernoulli(logits=loc + c * t), obs=jnp.asarray(flags))
    numpyro.sample("t", dist.StudentT(nu, loc, s + w), obs=t)


ZOO_DATA = {"N": 5, "counts": [0, 3, 1, 7, 4], "trials": [2, 0, 10, 4, 5],
            "flags": [1, 0, 0, 1, 1], "t": [0.3, -1.2, 2.5, 0.0, 4.1]}


def _cases():
    return [
        ("eight_schools_noncentered", lambda: conformance("eight_schools-eight_schools_noncentered"), eight_schools_noncentered),
        ("eight_schools_centered", lambda: conformance("eight_schools-eight_schools_centered"), eight_schools_centered),
        ("garch11", lambda: conformance("garch-garch11"), garch),
        ("arK", lambda: conformance("arK-arK"), ark),
        ("kidiq_interaction", lambda: conformance("kidiq-kidscore_interaction"), kidiq),
        ("sblrc_blr", lambda: conformance("sblrc-blr"), blr),
        ("linear_regression", lambda: (EXAMPLES / "linear_regression" / "model.ppl",
                                       json.loads((EXAMPLES / "linear_regression" / "data.json").read_text())),
         linear_regression),
        ("poisson_chain", lambda: (POISSON_CHAIN, {"X": 3}), poisson_chain),
        ("distribution_zoo", lambda: (ZOO, ZOO_DATA), zoo),
    ]


CASES = _cases()


@pytest.mark.parametrize("name,load,twin", CASES, ids=[c[0] for c in CASES])
def test_log_density_matches_numpyro(name, load, twin):
    source, data = load()
    # The model as written (no passes): its parameters are NumPyro's twin's.
    model = pplc.compile(source).condition(data, disabled_passes=("reparameterize",))
    lowered = model.lowered
    rng = np.random.default_rng(0)
    log_density = jax.jit(lambda u: model.unconstrained_log_density(u))
    for _ in range(5):
        u = rng.uniform(-2, 2, size=model.dim)
        # pplc's flat vector -> NumPyro's unconstrained sites, block by block.
        sites = {b.name: jnp.reshape(u[b.offset:b.offset + b.size], b.shape)
                 for b in lowered.layout}
        expected = -potential_energy(twin, (), data, sites)
        got = log_density(u)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
        constrained = {k: v for k, v in model.constrain(u).items()
                       if k in sites}
        joint, _ = np_log_density(twin, (), data, constrained)
        np.testing.assert_allclose(model.log_density(constrained), joint, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,load,twin", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_gradient_matches_numpyro(name, load, twin):
    source, data = load()
    model = pplc.compile(source).condition(data, disabled_passes=("reparameterize",))
    u = np.random.default_rng(1).uniform(-2, 2, size=model.dim)

    def theirs(u):
        sites = {b.name: jnp.reshape(u[b.offset:b.offset + b.size], b.shape)
                 for b in model.lowered.layout}
        return -potential_energy(twin, (), data, sites)

    _, grad = model.value_and_grad(u)
    np.testing.assert_allclose(grad, jax.grad(theirs)(jnp.asarray(u)), rtol=1e-6, atol=1e-8)
