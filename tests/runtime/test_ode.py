"""`ode`'s own solver (runtime/tsit5.py, forward sensitivities) against the diffrax
implementation it replaced and against closed forms: values and gradients to the solver's
tolerance on the damped oscillator, Lotka-Volterra and a stiff-ish linear system; failures
as NaN in the value and the gradient; derivatives in t0 and ts; batching member by member;
and the one while loop a gradient compiles to. (test_special.py holds the older checks.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.ode_compile import diffrax_ode
from pplc.runtime.ode import ode
from pplc.runtime.tsit5 import directions, solve

jax.config.update("jax_enable_x64", True)


def _osc(t, y, zeta, w):
    return [y[1], -2 * zeta * w * y[1] - w * w * y[0]]


def _lv(t, z, th):
    return [(th[0] - th[1] * z[1]) * z[0], (-th[2] + th[3] * z[0]) * z[1]]


def _stiff(t, y, a, b):   # eigenvalues -a and -b: b = 80 bounds an explicit step near 0.04
    return [-a * y[0] + y[1], -b * y[1]]


def _stiff_exact(ts, p):
    y10, y20, a, b = p[0], p[1], p[2], p[3]
    y2 = y20 * jnp.exp(-b * ts)
    y1 = jnp.exp(-a * ts) * y10 + y20 * (jnp.exp(-a * ts) - jnp.exp(-b * ts)) / (b - a)
    return jnp.stack([y1, y2], axis=-1)


# name -> (vector field, p -> ode's arguments after f, parameters p)
CASES = {
    "oscillator": (_osc, lambda p: (jnp.array([1.0, 0.0]), 0.0, jnp.linspace(0.25, 10, 40),
                                    p[0], p[1]), jnp.array([0.15, 2.0])),
    "lotka_volterra": (_lv, lambda p: (p[:2], 0.0, jnp.arange(1.0, 21.0), p[2:]),
                       jnp.array([33.0, 6.0, 0.55, 0.028, 0.8, 0.024])),
    "stiff_linear": (_stiff, lambda p: (p[:2], 0.0, jnp.linspace(0.5, 10, 20), p[2], p[3]),
                     jnp.array([1.0, 2.0, 0.5, 80.0])),
}


def _summary(solver, name, **options):
    f, args, p = CASES[name]
    weights = jnp.asarray(np.random.default_rng(0).normal(size=(args(p)[2].shape[0], 2)))
    return lambda q: jnp.sum(weights * solver(f, *args(q), **options))


@pytest.mark.slow   # diffrax compiles its solve and adjoint: ~5 s of CPU per case
@pytest.mark.parametrize("name", list(CASES))
def test_value_and_gradient_agree_with_diffrax(name):
    """Both solvers at the default tolerances (rtol = atol = 1e-6) against the truth (this
    solver at 1e-12; checked against closed forms and finite differences below and in
    test_special.py): each one's global error was measured at most ~6e-5 of the summary's
    scale (value) and ~2e-5 of the gradient's largest entry; the bound 2e-4 is 3x that,
    so a solver that lost its error control (errors ~1e-3 at these step counts) fails."""
    p = CASES[name][2]
    truth_v, truth_g = jax.jit(jax.value_and_grad(_summary(ode, name, rtol=1e-12,
                                                             atol=1e-12)))(p)
    v, g = jax.jit(jax.value_and_grad(_summary(ode, name)))(p)
    old_v, old_g = jax.jit(jax.value_and_grad(_summary(diffrax_ode, name)))(p)
    scale_v, scale_g = 1 + abs(float(truth_v)), float(jnp.max(jnp.abs(truth_g)))
    for value, grad in ((v, g), (old_v, old_g)):
        assert abs(float(value - truth_v)) <= 2e-4 * scale_v
        np.testing.assert_allclose(grad, truth_g, rtol=2e-4, atol=2e-4 * scale_g)
    np.testing.assert_allclose(g, old_g, rtol=2e-4, atol=2e-4 * scale_g)


def test_stiff_linear_against_closed_form_at_tight_tolerance():
    """Value and gradient (in y0, a, b) against the closed form, at rtol = atol = 1e-10."""
    f, args, p = CASES["stiff_linear"]
    ts = args(p)[2]
    got = jax.jit(jax.jacrev(lambda q: ode(f, *args(q), rtol=1e-10, atol=1e-10)))(p)
    want = jax.jit(jax.jacrev(lambda q: _stiff_exact(ts, q)))(p)   # jitted: one program
    np.testing.assert_allclose(got, want, atol=1e-8)
    np.testing.assert_allclose(ode(f, *args(p), rtol=1e-10, atol=1e-10), _stiff_exact(ts, p),
                               atol=1e-9)


def test_failure_is_nan_in_value_and_gradient():
    """max_steps spent: NaN rows and a NaN gradient, never zeros read as a solution."""
    f, args, p = CASES["lotka_volterra"]

    def logdensity(q):
        return jnp.sum(jnp.log(ode(f, *args(q), max_steps=5)))

    value, grad = jax.jit(jax.value_and_grad(logdensity))(p)
    assert np.isnan(value) and np.all(np.isnan(grad))
    assert np.all(np.isnan(ode(f, *args(p), max_steps=5)))


def test_nan_parameters_stop_at_once():
    """A NaN parameter makes the first step size NaN: the solve stops there (ok = False)
    instead of spending max_steps rejected steps."""
    def field(t, y, p):
        return jnp.stack(_lv(t, y, p[0]))

    th = jnp.array([0.55, 0.028, 0.8, 0.024]) * jnp.nan
    s0, dp = directions(jnp.array([33.0, 6.0]), [th], False)
    sol = jax.jit(lambda th: solve(field, jnp.array([33.0, 6.0]), 0.0, jnp.arange(1.0, 21.0),
                                   [th], s0, dp, 1e-6, 1e-6, 4096))(th)
    assert not bool(sol.ok) and int(sol.steps) == 0


def test_blow_up_is_nan():
    """y' = y^2 from y(0) = 1 reaches infinity at t = 1: the rows at and past it are NaN
    (every row, as for any failed solve)."""
    got = jax.jit(lambda y0: ode(lambda t, y: y * y, y0, 0.0, jnp.array([0.5, 2.0])))(
        jnp.array([1.0]))
    assert np.all(np.isnan(got))


def test_derivatives_in_t0_and_ts_and_some_arguments_only():
    """y = y0 exp(-k (t - t0)): derivatives in t0, in the output times, and in k alone
    (y0 held fixed: only the differentiated inputs are carried as sensitivities)."""
    y0 = jnp.array([2.0, -1.0])

    def solution(t0, ts, k):
        return ode(lambda t, y, k: -k * y, y0, t0, ts, k, rtol=1e-10, atol=1e-10)

    def exact(t0, ts, k):
        return y0 * jnp.exp(-k * (ts - t0))[:, None]

    t0, ts, k = 0.3, jnp.array([0.5, 1.0, 2.5]), 0.7
    for argnum in range(3):
        # jitted: one program each, where eagerly every operation compiled its own (88)
        got = jax.jit(jax.jacrev(solution, argnums=argnum))(t0, ts, k)
        want = jax.jit(jax.jacrev(exact, argnums=argnum))(t0, ts, k)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_vmap_runs_members_one_at_a_time_with_the_same_results():
    """A batch of gradients equals the gradients one by one, a failed member stays its own,
    and a batch compiles to a map (a scan), not a batched while loop."""
    f, args, p = CASES["lotka_volterra"]

    def logdensity(q, max_steps):
        return jnp.sum(jnp.log(ode(f, *args(q), max_steps=max_steps)))

    batch = p * jnp.array([[1.0], [1.05], [0.95]])
    vg = jax.value_and_grad(logdensity)
    values, grads = jax.jit(jax.vmap(vg, (0, None)), static_argnums=1)(batch, 4096)
    for i in range(3):
        v, g = jax.jit(vg, static_argnums=1)(batch[i], 4096)
        np.testing.assert_allclose(values[i], v, rtol=1e-12)
        np.testing.assert_allclose(grads[i], g, rtol=1e-12)
    mixed = jax.vmap(lambda w: ode(_osc, jnp.array([1.0, 0.0]), 0.0, jnp.linspace(0, 10, 21),
                                   0.1, w, max_steps=200))(jnp.array([1.0, 300.0]))
    assert np.all(np.isfinite(mixed[0])) and np.all(np.isnan(mixed[1]))
    text = str(jax.make_jaxpr(jax.vmap(vg, (0, None)), static_argnums=1)(batch, 4096))
    assert "scan" in text


def test_gradient_compiles_to_one_while_loop():
    """Reverse mode through forward sensitivities: the value and gradient hold one while
    loop (diffrax's checkpointed adjoint held 8), which is what keeps compiling cheap."""
    text = str(jax.make_jaxpr(jax.value_and_grad(_summary(ode, "lotka_volterra")))(
        CASES["lotka_volterra"][2]))
    assert text.count("while[") == 1


def test_hessian_forward_over_reverse():
    """Laplace's jax.hessian (forward over reverse) runs through the sensitivities and
    matches central differences of the gradient."""
    summary = _summary(ode, "oscillator", rtol=1e-10, atol=1e-10)
    p = CASES["oscillator"][2]
    hess = jax.jit(jax.hessian(summary))(p)
    grad = jax.jit(jax.grad(summary))
    eps = 1e-5
    fd = np.stack([(grad(p + eps * e) - grad(p - eps * e)) / (2 * eps) for e in jnp.eye(2)])
    np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-6)
