"""The special forms `integrate` and `ode` against closed forms, scipy, and the calculus they
must obey (fundamental theorem of calculus, differentiation under the integral sign, finite
differences), jitted and not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate as sp_integrate
from scipy.stats import norm

from pplc.runtime.ode import ode
from pplc.runtime.special import DEFAULT_NUM_NODES, integrate

jax.config.update("jax_enable_x64", True)

JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(fn, jit):
    return jax.jit(fn) if jit else fn


# The tests parametrized with JIT check the eager path against the jitted one. The others
# run jitted, as a log density runs these functions: one XLA program per shape, where
# eagerly each operation compiled its own for each new shape (benchmarks/suite_time.md).


def _inv_e(z, om):
    """1 / E(z) of flat LambdaCDM: the comoving-distance integrand."""
    return 1.0 / jnp.sqrt(om * (1.0 + z) ** 3 + (1.0 - om))


def _central_diff(fn, x, h):
    x = np.asarray(x, dtype=np.float64)
    grads = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h * max(1.0, abs(x.flat[i]))
        grads.flat[i] = (fn(x + e) - fn(x - e)) / (2 * e.flat[i])
    return grads


# ---------------------------------------------------------------------------------------
# integrate


@JIT
@pytest.mark.parametrize("a, b", [(0.0, 1.0), (-2.0, 3.5), (1.5, -0.5)])
def test_integrate_polynomials_exact_to_degree_2n_minus_1(jit, a, b):
    rng = np.random.default_rng(0)
    coef = rng.normal(size=2 * DEFAULT_NUM_NODES) / np.arange(1, 2 * DEFAULT_NUM_NODES + 1)
    poly = np.polynomial.Polynomial(coef)                  # degree 2n - 1
    anti = poly.integ()
    expected = anti(b) - anti(a)

    def f(x):
        return jnp.polyval(jnp.asarray(coef[::-1]), x)

    got = _maybe_jit(lambda a, b: integrate(f, a, b), jit)(a, b)
    scale = np.sum(np.abs(coef) * np.maximum(abs(a), abs(b)) ** np.arange(coef.size))
    assert abs(float(got) - expected) <= 1e-13 * scale * abs(b - a)


@JIT
@pytest.mark.parametrize("f, antiderivative, a, b", [
    (jnp.exp, np.exp, 0.0, 3.0),
    (jnp.exp, np.exp, -1.0, 5.0),
    (lambda x: 1.0 / (1.0 + x * x), np.arctan, 0.0, 10.0),
    (lambda x: 1.0 / (1.0 + x * x), np.arctan, -3.0, 2.0),
    (jnp.cos, np.sin, 0.0, 2 * np.pi + 1.0),
    (lambda x: 1.0 / x, np.log, 1.0, 8.0),
], ids=["exp", "exp2", "arctan", "arctan2", "cos", "log"])
def test_integrate_closed_forms(jit, f, antiderivative, a, b):
    """The contract: about 1e-10 relative or better for integrands analytic near [a, b]
    (1 / (1 + x^2) on [-3, 2], with poles at +-i close to the range, is the worst here)."""
    got = _maybe_jit(lambda a, b: integrate(f, a, b), jit)(a, b)
    expected = antiderivative(b) - antiderivative(a)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@JIT
@pytest.mark.parametrize("om", [0.05, 0.3, 0.7, 0.99])
@pytest.mark.parametrize("z", [1e-3, 0.1, 0.5, 1.4, 3.0])
def test_integrate_lcdm_comoving_distance_against_quad(jit, om, z):
    expected, _ = sp_integrate.quad(lambda x: 1 / np.sqrt(om * (1 + x) ** 3 + 1 - om), 0, z,
                                    epsabs=0, epsrel=1e-13)
    got = _maybe_jit(lambda z, om: integrate(_inv_e, 0.0, z, om), jit)(z, om)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


@JIT
@pytest.mark.parametrize("b", [0.3, 1.4, 2.5])
def test_integrate_grad_in_b_is_integrand_at_b(jit, b):
    """Fundamental theorem of calculus: d/db int_a^b f = f(b), d/da = -f(a)."""
    om = 0.3
    da, db = _maybe_jit(jax.grad(lambda a, b: integrate(_inv_e, a, b, om), argnums=(0, 1)),
                        jit)(0.2, b)
    np.testing.assert_allclose(db, _inv_e(b, om), rtol=1e-12)
    np.testing.assert_allclose(da, -_inv_e(0.2, om), rtol=1e-12)


@JIT
@pytest.mark.parametrize("c, b", [(0.5, 1.0), (2.0, 3.0), (7.0, 0.4)])
def test_integrate_grad_in_arg_is_integral_of_partial(jit, c, b):
    """d/dc int_0^b exp(-c x) dx = -int_0^b x exp(-c x) dx, in closed form and by
    central differences."""
    def value(c):
        return integrate(lambda x, c: jnp.exp(-c * x), 0.0, b, c)

    np.testing.assert_allclose(value(c), -np.expm1(-c * b) / c, rtol=1e-13)
    got = _maybe_jit(jax.grad(value), jit)(c)
    # -int_0^b x e^{-cx} dx = -(1 - (1 + c b) e^{-c b}) / c^2
    expected = -(1 - (1 + c * b) * np.exp(-c * b)) / c**2
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    fd = _central_diff(lambda c: float(value(c)), c, 1e-5)
    np.testing.assert_allclose(got, fd, rtol=1e-8)


def test_integrate_vectorized_over_580_upper_limits_under_jit():
    z = np.random.default_rng(1).uniform(0.015, 1.414, size=580)
    om = 0.27

    @jax.jit
    def distances(z, om):
        return integrate(_inv_e, 0.0, z, om)

    got = distances(jnp.asarray(z), om)
    assert got.shape == (580,)
    for i in range(0, 580, 29):
        expected, _ = sp_integrate.quad(lambda x: 1 / np.sqrt(om * (1 + x) ** 3 + 1 - om),
                                        0, z[i], epsabs=0, epsrel=1e-13)
        np.testing.assert_allclose(got[i], expected, rtol=1e-12)
    # one integral per element: the Jacobian in z is diagonal with f(z) on it
    jac = jax.jit(jax.jacrev(distances))(jnp.asarray(z[:20]), om)
    np.testing.assert_allclose(jac, np.diag(_inv_e(z[:20], om)), rtol=1e-12, atol=1e-15)
    # and the scalar gradient of a log density in Om matches central differences
    loglik = jax.jit(lambda om: jnp.sum(jnp.log(distances(jnp.asarray(z), om))))
    g = jax.grad(loglik)(om)
    np.testing.assert_allclose(g, _central_diff(lambda o: float(loglik(o)), om, 1e-6),
                               rtol=1e-7)


def test_integrate_batched_args_and_vmap():
    """An argument with the batch shape of b broadcasts against it, and vmap over an
    argument gives the same numbers as a loop."""
    z = jnp.linspace(0.1, 2.0, 7)
    oms = jnp.linspace(0.1, 0.9, 7)
    # jitted: one program per shape (see _maybe_jit)
    distance = jax.jit(lambda z, om: integrate(_inv_e, 0.0, z, om))
    batched = distance(z, oms)
    looped = jnp.stack([distance(z[i], oms[i]) for i in range(7)])
    np.testing.assert_allclose(batched, looped, rtol=1e-14)
    mapped = jax.jit(jax.vmap(lambda om: integrate(_inv_e, 0.0, z, om)))(oms)
    assert mapped.shape == (7, 7)
    np.testing.assert_allclose(jnp.diag(mapped), looped, rtol=1e-14)


@pytest.mark.parametrize("num_nodes", [0, -3, 2.5, True])
def test_integrate_rejects_bad_num_nodes(num_nodes):
    with pytest.raises(ValueError, match="num_nodes"):
        integrate(jnp.exp, 0.0, 1.0, num_nodes=num_nodes)


def test_integrate_num_nodes_converges():
    errs = [abs(float(jax.jit(lambda: integrate(lambda x: 1 / (1 + x * x), 0.0, 10.0,
                                                 num_nodes=n))())
                - np.arctan(10.0)) for n in (8, 16, 32)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-12


# semi-infinite and infinite ranges (concrete +-inf limits)

@JIT
@pytest.mark.parametrize("c", [0.5, 1.0, 3.0])
def test_integrate_semi_infinite_exponential(jit, c):
    def value(c):
        return integrate(lambda x, c: jnp.exp(-c * x), 0.0, jnp.inf, c)

    np.testing.assert_allclose(_maybe_jit(value, jit)(c), 1 / c, rtol=1e-10)
    np.testing.assert_allclose(_maybe_jit(jax.grad(value), jit)(c), -1 / c**2, rtol=1e-10)


@JIT
def test_integrate_infinite_ranges_gaussian_and_cauchy(jit):
    def gauss(x):
        return jnp.exp(-x * x)

    def run(a, b, f=gauss):
        return float(_maybe_jit(lambda: integrate(f, a, b), jit)())

    sqrt_pi = np.sqrt(np.pi)
    np.testing.assert_allclose(run(0.0, np.inf), sqrt_pi / 2, rtol=1e-12)
    np.testing.assert_allclose(run(-np.inf, 0.0), sqrt_pi / 2, rtol=1e-12)
    np.testing.assert_allclose(run(-np.inf, np.inf), sqrt_pi, rtol=1e-9)
    np.testing.assert_allclose(run(np.inf, -np.inf), -sqrt_pi, rtol=1e-9)
    np.testing.assert_allclose(run(np.inf, 0.0), -sqrt_pi / 2, rtol=1e-12)
    np.testing.assert_allclose(run(0.0, -np.inf), -sqrt_pi / 2, rtol=1e-12)
    assert run(np.inf, np.inf) == 0.0
    cauchy = lambda x: 1 / (1 + x * x)  # noqa: E731
    np.testing.assert_allclose(run(1.0, np.inf, cauchy), np.pi / 4, rtol=1e-12)
    np.testing.assert_allclose(run(-np.inf, np.inf, cauchy), np.pi, rtol=1e-12)


def test_integrate_semi_infinite_grad_in_finite_limit():
    """d/da int_a^inf f = -f(a), d/db int_-inf^b f = f(b); the normal CDF as a check."""
    def phi(x):
        return jnp.exp(-x * x / 2) / np.sqrt(2 * np.pi)

    def cdf(b):
        return integrate(phi, -jnp.inf, b)

    # one program each for the four points (a new jax.grad object per point traced and
    # compiled its program anew)
    value, grad = jax.jit(cdf), jax.jit(jax.grad(cdf))
    tail_grad = jax.jit(jax.grad(lambda a: integrate(phi, a, jnp.inf)))
    for b in (-1.5, 0.0, 0.7, 2.0):
        np.testing.assert_allclose(value(b), norm.cdf(b), rtol=1e-10)
        # the gradient is the rule applied to d/db of the mapped integrand: its error is
        # about 1e-10 absolute (relative to the integral's scale, 1), not relative to phi(b)
        np.testing.assert_allclose(grad(b), phi(b), rtol=0, atol=1e-9)
        np.testing.assert_allclose(tail_grad(b), -phi(b), rtol=0, atol=1e-9)


def test_integrate_mixed_finite_and_infinite_upper_limits():
    b = np.array([1.0, np.inf, 2.0, np.inf])
    # jitted with b a constant of the program: infinite limits must be concrete
    got = jax.jit(lambda: integrate(lambda x: jnp.exp(-x), 0.0, b))()
    np.testing.assert_allclose(got, -np.expm1(-b), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# ode


@JIT
@pytest.mark.parametrize("t0", [0.0, -0.5])
def test_ode_exponential_decay(jit, t0):
    k = 0.7
    ts = jnp.array([0.0, 0.5, 1.0, 2.0, 5.0])
    y0 = jnp.array([2.0, -1.0])
    sol = _maybe_jit(lambda y0, k: ode(lambda t, y, k: -k * y, y0, t0, ts, k), jit)(y0, k)
    assert sol.shape == (5, 2)
    expected = np.asarray(y0) * np.exp(-k * (np.asarray(ts) - t0))[:, None]
    np.testing.assert_allclose(sol, expected, rtol=1e-5, atol=1e-7)
    if t0 == 0.0:
        np.testing.assert_array_equal(sol[0], y0)   # ts[0] == t0: the first row is y0


def _oscillator(t, y, zeta, w):
    """x'' + 2 zeta w x' + w^2 x = 0 as the system (x, v)."""
    x, v = y[0], y[1]
    return [v, -2.0 * zeta * w * v - w * w * x]


def _oscillator_exact(ts, x0, v0, zeta, w):
    """Underdamped (zeta < 1) closed form: x = e^{-zeta w t} (A cos wd t + B sin wd t)."""
    wd = w * jnp.sqrt(1 - zeta**2)
    a, b = x0, (v0 + zeta * w * x0) / wd
    e, c, s = jnp.exp(-zeta * w * ts), jnp.cos(wd * ts), jnp.sin(wd * ts)
    x = e * (a * c + b * s)
    v = e * ((b * wd - zeta * w * a) * c - (a * wd + zeta * w * b) * s)
    return jnp.stack([x, v], axis=-1)


OSC_TS = jnp.linspace(0.0, 10.0, 21)


# one compile each, shared by the parametrized cases (zeta and w are traced arguments)
_osc_tight = jax.jit(lambda y0, zeta, w: ode(_oscillator, y0, 0.0, OSC_TS, zeta, w,
                                             rtol=1e-8, atol=1e-8))
_osc_default = jax.jit(lambda y0, zeta, w: ode(_oscillator, y0, 0.0, OSC_TS, zeta, w))


@pytest.mark.parametrize("zeta, w", [(0.1, 1.0), (0.5, 2.0), (0.05, 3.0)])
def test_ode_damped_oscillator_closed_form(zeta, w):
    y0 = jnp.array([1.0, 0.5])
    exact = _oscillator_exact(OSC_TS, 1.0, 0.5, zeta, w)
    np.testing.assert_allclose(_osc_tight(y0, zeta, w), exact, atol=1e-6)
    # the default tolerances (1e-6) give a global error of a few 1e-6
    np.testing.assert_allclose(_osc_default(y0, zeta, w), exact, atol=3e-5)


def test_ode_gradients_against_closed_form_and_finite_differences():
    """Gradients of a scalar summary in y0 and in (zeta, w): against the derivative of the
    closed form and against central differences of the solver."""
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(OSC_TS.size, 2)))

    def summary(p):   # p = (x0, v0, zeta, w)
        ys = ode(_oscillator, p[:2], 0.0, OSC_TS, p[2], p[3], rtol=1e-10, atol=1e-10)
        return jnp.sum(weights * ys)

    def exact_summary(p):
        return jnp.sum(weights * _oscillator_exact(OSC_TS, p[0], p[1], p[2], p[3]))

    p = jnp.array([1.0, 0.5, 0.2, 1.5])
    grad = jax.jit(jax.grad(summary))(p)
    exact = jax.jit(jax.grad(exact_summary))(p)   # one program, not one per operation
    np.testing.assert_allclose(grad, exact, rtol=1e-6)
    value = jax.jit(summary)
    fd = _central_diff(lambda q: float(value(jnp.asarray(q))), p, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def _lv(t, z, theta):
    u, v = z[0], z[1]
    return [(theta[0] - theta[1] * v) * u, (-theta[2] + theta[3] * u) * v]


LV_THETA = np.array([0.55, 0.028, 0.8, 0.024])
LV_Z0 = np.array([33.0, 6.0])
LV_TS = np.arange(1.0, 21.0)


def _lv_reference(theta, z0):
    sol = sp_integrate.solve_ivp(lambda t, z: np.array(_lv(t, z, theta)), (0.0, 20.0), z0,
                                 t_eval=LV_TS, method="DOP853", rtol=1e-10, atol=1e-10)
    assert sol.success
    return sol.y.T


@JIT
def test_ode_lotka_volterra_against_solve_ivp(jit):
    got = _maybe_jit(lambda z0, th: ode(_lv, z0, 0.0, jnp.asarray(LV_TS), th), jit)(
        jnp.asarray(LV_Z0), jnp.asarray(LV_THETA))
    assert got.shape == (20, 2)
    np.testing.assert_allclose(got, _lv_reference(LV_THETA, LV_Z0), rtol=1e-5)


def test_ode_lotka_volterra_integer_inputs_and_gradient():
    """Data as the model gives it (integer times and initial state), and the gradient of a
    log density in (z0, theta) against central differences."""
    got = ode(_lv, [33, 6], 0, list(range(1, 21)), jnp.asarray(LV_THETA))
    np.testing.assert_allclose(got, _lv_reference(LV_THETA, LV_Z0), rtol=1e-5)

    def logdensity(p):
        z = ode(_lv, p[:2], 0.0, jnp.asarray(LV_TS), p[2:], rtol=1e-10, atol=1e-10)
        return jnp.sum(jnp.log(z))

    p = jnp.concatenate([jnp.asarray(LV_Z0), jnp.asarray(LV_THETA)])
    grad = jax.jit(jax.grad(logdensity))(p)
    assert np.all(np.isfinite(grad))
    value = jax.jit(logdensity)
    fd = _central_diff(lambda q: float(value(jnp.asarray(q))), p, 1e-5)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_ode_failure_is_nan_not_an_exception():
    """max_steps exhausted inside jit: every row is NaN, the log density is non-finite, and
    neither the value nor the gradient raises."""
    ts, z0, th = jnp.asarray(LV_TS), jnp.asarray(LV_Z0), jnp.asarray(LV_THETA)
    failed = jax.jit(lambda z0, th: ode(_lv, z0, 0.0, ts, th, max_steps=5))(z0, th)
    assert failed.shape == (20, 2) and np.all(np.isnan(failed))

    def logdensity(th):
        return jnp.sum(jnp.log(ode(_lv, z0, 0.0, ts, th, max_steps=5)))

    value, grad = jax.jit(jax.value_and_grad(logdensity))(th)
    assert not np.isfinite(value)
    assert grad.shape == (4,)
    # NaN parameters fail the same way rather than hanging or raising
    assert np.all(np.isnan(jax.jit(lambda th: ode(_lv, z0, 0.0, ts, th))(th * jnp.nan)))


def test_ode_vmap_over_parameters():
    ts = jnp.asarray(LV_TS)
    thetas = jnp.asarray(LV_THETA) * jnp.array([[1.0], [1.1], [0.9]])
    batched = jax.jit(jax.vmap(lambda th: ode(_lv, jnp.asarray(LV_Z0), 0.0, ts, th)))(thetas)
    assert batched.shape == (3, 20, 2)
    for i in range(3):
        np.testing.assert_allclose(batched[i], _lv_reference(np.asarray(thetas[i]), LV_Z0),
                                   rtol=1e-5)
    # one member failing (max_steps) does not spoil the others
    oscs = jax.vmap(lambda w: ode(_oscillator, jnp.array([1.0, 0.0]), 0.0, OSC_TS, 0.1, w,
                                  max_steps=200))(jnp.array([1.0, 300.0]))
    assert np.all(np.isfinite(oscs[0])) and np.all(np.isnan(oscs[1]))


def test_ode_vector_field_may_return_an_array():
    ts = jnp.array([0.0, 1.0])
    from_list = ode(lambda t, y: [-y[0], -2 * y[1]], jnp.array([1.0, 1.0]), 0.0, ts)
    from_array = ode(lambda t, y: jnp.array([-1.0, -2.0]) * y, jnp.array([1.0, 1.0]), 0.0, ts)
    np.testing.assert_allclose(from_list, from_array, rtol=1e-14)
    np.testing.assert_allclose(from_list[1], np.exp([-1.0, -2.0]), rtol=1e-5)


def test_ode_rejects_non_vector_state():
    with pytest.raises(ValueError, match="y0"):
        ode(lambda t, y: -y, jnp.ones((2, 2)), 0.0, jnp.array([1.0]))
