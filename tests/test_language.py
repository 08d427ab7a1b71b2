"""The language of LANGUAGE.md end to end: statements, functions, types, special forms.

Each test compiles a small model and checks its log density against an independent
computation (NumPyro, SciPy, or NumPy by hand), or checks a mistake's diagnostic.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate as sp_integrate
from scipy import stats

import pplc
from pplc.errors import PplcError

numpyro = pytest.importorskip("numpyro")
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _conformance_models():
    if not CONFORMANCE.exists():
        return []
    return sorted(p for p in CONFORMANCE.glob("*/model.ppl"))


@functools.lru_cache(maxsize=None)
def _conditioned(path: Path):
    """Each model file conditioned on its data once per process: the two tests over every
    model below then share its compiled value-and-gradient program (the Lotka-Volterra
    ODE's alone costs tens of CPU seconds to compile) instead of compiling it twice."""
    return pplc.compile(path).condition(path.parent / "data.json")


@pytest.mark.parametrize("path", _conformance_models(), ids=lambda p: p.parent.name)
def test_every_conformance_model_compiles_with_a_finite_density(path):
    model = _conditioned(path)
    value, grad = model.value_and_grad(np.zeros(model.dim))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def _matches_numpyro(source, data, twin, points=3, seed=0):
    model = pplc.compile(source).condition(data)
    rng = np.random.default_rng(seed)
    # NumPyro's side jitted once: op by op it compiled a program per operation and shape
    theirs = jax.jit(lambda sites: -potential_energy(twin, (), {}, sites))
    for _ in range(points):
        u = rng.uniform(-1.5, 1.5, size=model.dim)
        sites = {b.name: jnp.reshape(u[b.offset:b.offset + b.size], b.unconstrained_shape)
                 for b in model.lowered.layout}
        np.testing.assert_allclose(model.unconstrained_log_density(u), theirs(sites),
                                   rtol=1e-8)
    return model


def test_vector_types_match_numpyro():
    """simplex (stick-breaking), ordered and corr_cholesky use the same bijections as
    NumPyro, so densities agree on the unconstrained space, Jacobians included."""
    source = """
data y: int[3]
theta: simplex[3] ~ Dirichlet([1.0, 2.0, 3.0])
y ~ Multinomial(10, theta)
c: ordered[3] ~ Normal(0, 2)
L: corr_cholesky[3] ~ LKJCholesky(3, 2.0)
z ~ MultivariateNormal(c, scale_tril=L)
"""

    def twin():
        theta = numpyro.sample("theta", dist.Dirichlet(jnp.array([1.0, 2.0, 3.0])))
        numpyro.sample("y", dist.Multinomial(10, theta), obs=jnp.array([2, 3, 5]))
        c = numpyro.sample("c", dist.ImproperUniform(dist.constraints.ordered_vector, (), (3,)))
        numpyro.factor("c_prior", dist.Normal(0, 2).log_prob(c).sum())
        L = numpyro.sample("L", dist.LKJCholesky(3, 2.0))
        numpyro.sample("z", dist.MultivariateNormal(c, scale_tril=L))

    model = _matches_numpyro(source, {"y": [2, 3, 5]}, twin)
    kinds = {n: c.kind for n, c in model.lowered.plan.constraints.items()}
    assert kinds == {"theta": "simplex", "c": "ordered", "L": "corr_cholesky", "z": "interval"}
    assert model.dim == 2 + 3 + 3 + 3


def test_functions_locals_lists_slices_and_conditionals():
    source = """
data K: int
data g: int[K]
data X: real[K, 2]
def sq_plus(a, b):
    c = a * a
    return c + b
mu: real[2] ~ Normal(0, 1)
s ~ HalfNormal(1)
w = stack([mu[0], mu[1] * 2.0])
m = sq_plus(X[0:K, 0], w[1]) + diag(ones(K)) @ X[:, 1]
for k in range(K):
    shift[k] = 1.0 if g[k] > 1 and not g[k] == 3 else -1.0
y ~ Normal(m + shift, s)
"""
    data = {"K": 3, "g": [0, 2, 3], "X": [[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]],
            "y": [1.0, 0.0, 2.0]}
    model = pplc.compile(source).condition(data)
    mu, s = np.array([0.3, -0.2]), 1.4
    X = np.array(data["X"])
    m = X[:, 0] ** 2 + mu[1] * 2.0 + X[:, 1]
    shift = np.array([-1.0, 1.0, -1.0])
    expected = (stats.norm(0, 1).logpdf(mu).sum() + stats.halfnorm(scale=1).logpdf(s)
                + stats.norm(m + shift, s).logpdf(data["y"]).sum())
    assert float(model.log_density({"mu": mu, "s": s})) == pytest.approx(expected, rel=1e-12)


def test_truncated_density_matches_scipy():
    source = """
data y: real[4]
mu ~ Normal(0, 5)
s ~ Truncated(Normal(1, 2), lower=0.1)
y ~ Truncated(Normal(mu, s), lower=0, upper=10)
"""
    y = np.array([0.5, 2.0, 3.3, 1.2])
    model = pplc.compile(source).condition({"y": y.tolist()})
    mu, s = 1.3, 0.7
    expected = (stats.norm(0, 5).logpdf(mu)
                + stats.truncnorm((0.1 - 1) / 2, np.inf, loc=1, scale=2).logpdf(s)
                + stats.truncnorm(-mu / s, (10 - mu) / s, loc=mu, scale=s).logpdf(y).sum())
    assert float(model.log_density({"mu": mu, "s": s})) == pytest.approx(expected, rel=1e-10)
    # s's support moved to (0.1, inf): the transform respects the truncation bound.
    assert float(model.constrain(np.array([0.0, -30.0]))["s"]) > 0.1


def test_integrate_in_the_supernova_model_matches_scipy():
    data = json.loads((EXAMPLES / "supernova" / "data.json").read_text())
    model = pplc.compile(EXAMPLES / "supernova" / "model.ppl").condition(data)
    h0, om = 68.0, 0.31
    z, mu, err = (np.array(data[k]) for k in ("z", "mu", "mu_err"))
    integral = np.array([sp_integrate.quad(lambda x: 1 / np.sqrt(om * (1 + x) ** 3 + 1 - om),
                                           0, zi, epsabs=1e-13, epsrel=1e-12)[0] for zi in z])
    modulus = 5 * np.log10((1 + z) * 299792.458 / h0 * integral) + 25
    expected = (stats.uniform(50, 50).logpdf(h0) + stats.uniform(0, 1).logpdf(om)
                + stats.norm(modulus, err).logpdf(mu).sum())
    assert float(model.log_density({"H0": h0, "Om": om})) == pytest.approx(expected, rel=1e-10)
    # Differentiable in Om through the integral: autodiff agrees with a central difference.
    u = model.unconstrain({"H0": h0, "Om": om})
    _, grad = model.value_and_grad(u)
    step = 1e-6
    plus, minus = (float(model.unconstrained_log_density(u + d)) for d in
                   (np.array([0, step]), np.array([0, -step])))
    assert grad[1] == pytest.approx((plus - minus) / (2 * step), rel=1e-5)


@pytest.mark.slow
def test_ode_in_the_lotka_volterra_model_matches_scipy():
    folder = CONFORMANCE / "hudson_lynx_hare-lotka_volterra"
    if not folder.exists():
        pytest.skip(f"{CONFORMANCE} is absent")
    data = json.loads((folder / "data.json").read_text())
    model = _conditioned(folder / "model.ppl")
    theta = np.array([0.55, 0.028, 0.8, 0.024])
    z_init, sigma = np.array([33.0, 6.0]), np.array([0.25, 0.25])
    ts = np.array(data["ts"], float)

    def rhs(t, z):
        u, v = z
        return [(theta[0] - theta[1] * v) * u, (-theta[2] + theta[3] * u) * v]

    z = sp_integrate.solve_ivp(rhs, (0, ts[-1]), z_init, t_eval=ts, rtol=1e-10,
                               atol=1e-10).y.T
    y, y_init = np.array(data["y"]), np.array(data["y_init"])
    trunc = np.log(stats.norm(np.array([1, 0.05, 1, 0.05]), [0.5, 0.05, 0.5, 0.05]).sf(0))
    expected = (np.sum(stats.norm([1, 0.05, 1, 0.05], [0.5, 0.05, 0.5, 0.05]).logpdf(theta))
                + stats.lognorm(1, scale=10).logpdf(z_init).sum()
                + stats.lognorm(1, scale=np.exp(-1)).logpdf(sigma).sum()
                + stats.lognorm(sigma, scale=z_init).logpdf(y_init).sum()
                + stats.lognorm(sigma, scale=z).logpdf(y).sum())
    # Jitted: one program for the whole density, where op by op each operation and shape
    # compiled its own (the solver's loops included)
    got = float(jax.jit(model.log_density)({"theta": theta, "z_init": z_init,
                                            "sigma": sigma}))
    # The narrowing `theta: positive[4] ~ Normal(...)` is Stan's: no renormalization, so the
    # constant truncation term is not in the density.
    del trunc
    # The ODE solver runs at rtol = atol = 1e-6: the density agrees to about 1e-4 relative.
    assert got == pytest.approx(expected, rel=1e-4)


def test_piecewise_autoregression_and_recursion():
    source = """
data T: int
phi ~ Uniform(-1, 1)
x[0] ~ Normal(0, 1)
for t in range(1, T):
    x[t] ~ Normal(phi * x[t - 1], 0.5)
h[0] = 1.0
for t in range(1, T):
    h[t] = 0.5 * h[t - 1] + x[t - 1] ** 2
"""
    model = pplc.compile(source).condition({"T": 5})
    x = np.array([0.3, -0.1, 0.7, 0.2, -0.4])
    expected = (np.log(0.5) + stats.norm(0, 1).logpdf(x[0])
                + stats.norm(0.6 * x[:-1], 0.5).logpdf(x[1:]).sum())
    assert float(model.log_density({"phi": 0.6, "x": x})) == pytest.approx(expected, rel=1e-12)
    h = [1.0]
    for t in range(1, 5):
        h.append(0.5 * h[-1] + x[t - 1] ** 2)
    u = model.unconstrain({"phi": 0.6, "x": x})
    np.testing.assert_allclose(model.constrain(u)["h"], h, rtol=1e-12)


@pytest.mark.parametrize("source,data,message", [
    ("data a: real[3]\ndata b: real[2]\nmu ~ Normal(0, 1)\nx = mu * a + b\n"
     "y ~ Normal(x, 1)\n", {"a": [1, 2, 3], "b": [1, 2], "y": [1, 2, 3]},
     "4:5: error: shapes (3,) and (2,) do not broadcast for '+'"),
    ("data A: real[3, 2]\ndata b: real[3]\nx = A @ b\nmu ~ Normal(x, 1)\n",
     {"A": [[1, 2], [3, 4], [5, 6]], "b": [1, 2, 3]},
     "3:5: error: matrix product of shapes (3, 2) and (3,): the inner sizes 2 and 3 differ"),
    ("theta: real[3] ~ Dirichlet(ones(3))\n", {},
     "1:8: error: type 'real[3]' is wider than, or not inside, the support of Dirichlet"),
    ("p: real(lower=-1, upper=2) ~ Beta(2, 2)\n", {},
     "1:4: error: type 'real(lower=-1, upper=2)' is wider than"),
    ("def f(x, a):\n    return x * a\nI = integrate(f, 0, 1)\nmu ~ Normal(I, 1)\n", {},
     "3:15: error: 'f' takes 2 parameters, but integrate calls it with 1"),
    ("I = integrate(g, 0, 1)\nmu ~ Normal(I, 1)\n", {}, "1:15: error: unknown function 'g'"),
    ("x ~ Truncated(Truncated(Normal(0, 1), lower=0), upper=1)\n", {},
     "1:15: error: Truncated cannot wrap another Truncated"),
    ("data p: simplex[3]\nx ~ Normal(p[0], 1)\n", {"p": [0.2, 0.3, 0.4], "x": 1.0},
     "1:9: error: data 'p' does not satisfy its type simplex[3]: its last axis sums to 0.9"),
])
def test_language_mistakes(source, data, message):
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition(data)
    assert message in info.value.render().splitlines()[0], info.value.render()


def test_gradients_are_plain_jax():
    """A conditioned model's log density composes with jit, vmap and grad in user code."""
    model = pplc.compile(EXAMPLES / "linear_regression" / "model.ppl").condition(
        EXAMPLES / "linear_regression" / "data.json")
    points = jnp.asarray(np.random.default_rng(0).normal(size=(7, model.dim)))
    batched = jax.jit(jax.vmap(model.unconstrained_log_density))(points)
    single = [float(model.unconstrained_log_density(p)) for p in points]
    np.testing.assert_allclose(batched, single, rtol=1e-12)
    grads = jax.vmap(jax.grad(model.unconstrained_log_density))(points)
    assert grads.shape == (7, model.dim) and np.all(np.isfinite(grads))


def _every_model():
    paths = _conformance_models() + sorted(EXAMPLES.glob("*/model*.ppl"))
    return paths


@pytest.mark.parametrize("path", _every_model(),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_model_has_a_finite_density_at_a_prior_draw(path):
    """The acceptance of the language issue: every conformance model and every example
    compiles, and its log density is finite at a draw from the prior (forward simulation;
    for models with a `factor`, whose prior it cannot simulate, at Stan's uniform(-2, 2)
    starting point instead)."""
    model = _conditioned(path)
    try:
        draw = model.prior_predictive(draws=1, seed=0, internal=True)
        u = model.unconstrain({b.name: draw[b.name][0] for b in model.lowered.layout})
    except PplcError:
        from pplc.inference.initialize import initial_positions
        u = initial_positions(model._log_density, model.data, model.dim, 1,
                              jax.random.PRNGKey(0))[0]
    value, grad = model.value_and_grad(u)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_comparing_sizes_is_decided_while_compiling_and_samples():
    """`N > 1` between two sizes is a Python bool, not a staged comparison (whose bool()
    fails under jit), so the model samples."""
    source = ("data N: int\ndata y: real[N]\nmu ~ Normal(0, 1)\n"
              "s = (1.0 if N > 1 else 0.0) + 1\ny ~ Normal(mu, s)\n")
    model = pplc.compile(source).condition({"N": 3, "y": [0.1, 0.2, 0.3]})
    posterior = model.sample(chains=1, warmup=50, draws=20, seed=0)
    assert np.all(np.isfinite(posterior["mu"]))
    assert float(model.log_density({"mu": 0.0})) == pytest.approx(
        float(np.sum(-0.5 * np.array([0.1, 0.2, 0.3]) ** 2 / 4 - np.log(2) - 0.5 * np.log(2 * np.pi))
              - 0.5 * np.log(2 * np.pi)))
