"""The log density's data-only work evaluated once at binding (pplc/backends/hoist.py):
the same values and derivatives as the plain density, recomputed for new data, never
where the data are split, and only where it pays."""

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
import pplc.conditioned
from pplc.backends import hoist
from pplc.errors import InternalError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUPERNOVA = EXAMPLES / "supernova"
POINTS = [np.array([0.3, -1.2]), np.array([-1.5, 2.0]), np.array([0.0, 0.0])]


@pytest.fixture(scope="module")
def supernova():
    model = pplc.compile(SUPERNOVA / "model.ppl")
    data = json.loads((SUPERNOVA / "data.json").read_text())
    return model, data


@functools.lru_cache
def _jitted(log_density):
    return jax.jit(jax.value_and_grad(log_density))


def plain_value_and_grad(cm, u):
    return _jitted(cm._log_density)(u, cm.data)


def test_the_supernova_grid_is_computed_once_and_the_density_is_unchanged(supernova):
    model, data = supernova
    cm = model.condition(data)
    density, bundle = cm._sampler_density()
    assert isinstance(density, hoist.HoistedDensity)
    hoisted = cm._shared["hoisting"].hoisted
    # (1 + x)^3 on the [nodes, supernovae] grid of `integrate`, and log(mu_err)
    assert hoist.Hoisted("integer_pow", (32, 580)) in hoisted
    assert all(np.prod(h.shape) <= 32 * 580 for h in hoisted)
    for u in POINTS:
        value, grad = cm.value_and_grad(u)
        plain_value, plain_grad = plain_value_and_grad(cm, u)
        np.testing.assert_allclose(value, plain_value, rtol=1e-14)
        np.testing.assert_allclose(grad, plain_grad, rtol=1e-12, atol=1e-12)
    # second derivatives are those of the rest's own operations (a custom_jvp)
    np.testing.assert_allclose(jax.jit(jax.hessian(density))(POINTS[0], bundle),
                               jax.jit(jax.hessian(cm._log_density))(POINTS[0], cm.data),
                               rtol=1e-10)
    values = jax.jit(jax.vmap(density, (0, None)))(jnp.stack(POINTS), bundle)
    np.testing.assert_allclose(values, [plain_value_and_grad(cm, u)[0] for u in POINTS],
                               rtol=1e-14)


def test_new_data_of_the_same_shapes_get_their_own_hoisted_values(supernova):
    model, data = supernova
    first = model.condition(data)
    other = dict(data, z=[z * 1.25 for z in data["z"]])
    second = model.condition(other)
    # one split (it keys the compiled programs), two bindings
    assert second._shared is first._shared
    assert second._sampler_density()[0] is first._sampler_density()[0]
    first_grid = first._sampler_density()[1][1]
    second_grid = second._sampler_density()[1][1]
    assert not np.allclose(first_grid[0], second_grid[0])
    for u in POINTS:
        value, grad = second.value_and_grad(u)
        plain_value, plain_grad = plain_value_and_grad(second, u)
        np.testing.assert_allclose(value, plain_value, rtol=1e-14)
        np.testing.assert_allclose(grad, plain_grad, rtol=1e-12, atol=1e-12)
        assert abs(float(value) - float(first.value_and_grad(u)[0])) > 1.0
    # and the first model still reads its own
    np.testing.assert_allclose(first.value_and_grad(POINTS[0])[0],
                               plain_value_and_grad(first, POINTS[0])[0], rtol=1e-14)


def test_a_tangent_in_the_data_is_refused_not_zero(supernova):
    model, data = supernova
    density, (runtime, hoisted) = model.condition(data)._sampler_density()
    with pytest.raises(TypeError, match="differentiable in u only"):
        jax.grad(lambda z: density(POINTS[0], ({**runtime, "z": z}, hoisted)))(runtime["z"])


def test_samplers_get_the_hoisted_density_unless_the_data_are_split(tmp_path, monkeypatch):
    # exp(x) of 4096 data values: worth hoisting, and y can be split along N
    (tmp_path / "m.ppl").write_text("data N: int\ndata x: real[N]\ndata y: real[N]\n"
                                    "a ~ Normal(0, 1)\ny ~ Normal(a * exp(x), 1)\n")
    x = np.linspace(-1.0, 1.0, 4096)
    cm = pplc.compile(tmp_path / "m.ppl").condition({"N": 4096, "x": x, "y": 0.5 * np.exp(x)})
    seen = []

    class Seen(Exception):
        pass

    def spy(log_density, density_data, *args, **kwargs):   # what sample() hands NUTS
        seen.append((log_density, density_data, kwargs.get("shard_data")))
        raise Seen   # (the supernova tests of test_examples sample the hoisted density)

    monkeypatch.setattr(pplc.conditioned, "sample_nuts", spy)
    for shard_data in (False, True):
        with pytest.raises(InternalError, match="Seen"):   # (guard_public_methods wraps it)
            cm.sample(chains=1, warmup=30, draws=10, progress=False, shard_data=shard_data)
    (hoisted, _, none), (plain, plain_data, axes) = seen
    assert isinstance(hoisted, hoist.HoistedDensity) and none is None
    assert axes and plain is cm._log_density and plain_data is cm.data
    # a run of several processes (each its own rows) never hoists either
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert cm._sampler_density() == (cm._log_density, cm.data)


def test_hoisting_that_would_not_pay_is_not_done():
    x = jnp.linspace(0.0, 1.0, 200)

    def cheap(u, data):   # data-only work XLA fuses for free: nothing to keep
        return -jnp.sum((data["y"] - u[0] * (2.0 * data["x"] + 1.0)) ** 2)

    def square(u, data):  # exp on an N x N grid of the data: never kept
        d = data["x"][:, None] - data["x"][None, :]
        return -jnp.sum(jnp.log1p(u[0] ** 2 * jnp.exp(-d * d)))

    def row_sums(u, data):  # the same grid reduced to N values: those are kept
        d = data["x"][:, None] - data["x"][None, :]
        return -jnp.sum((data["y"] - u[0] * jnp.sum(jnp.exp(-d * d), axis=1)) ** 2)

    data = {"x": x, "y": jnp.cos(x)}
    assert hoist.split(cheap, 1, data) is None
    assert hoist.split(square, 1, data) is None
    # (where the gradient reduces the grid alone, the reduction is what is kept)
    linear = hoist.split(lambda u, d: square(u, d) + u[0] * jnp.sum(jnp.exp(-d["x"][:, None]
                                                                            * d["x"])), 1, data)
    assert linear is not None and all(np.prod(h.shape) < 200 * 200 for h in linear.hoisted)
    kept = hoist.split(row_sums, 1, data)
    assert kept is not None and kept.hoisted == (hoist.Hoisted("reduce_sum", (200,)),)
    bundle, u = kept.bind(data), jnp.array([0.7])
    np.testing.assert_allclose(jax.value_and_grad(kept.density)(u, bundle)[1],
                               jax.grad(row_sums)(u, data), rtol=1e-13)
    # the suite's models with no data-only work worth keeping sample the plain density
    for name in ("eight_schools", "linear_regression", "hierarchical_logistic"):
        cm = pplc.compile(EXAMPLES / name / "model.ppl").condition(
            EXAMPLES / name / "data.json")
        assert cm._sampler_density() == (cm._log_density, cm.data), name


def test_the_disk_key_names_the_split(supernova):
    model, data = supernova
    cm = model.condition(data)
    density, _ = cm._sampler_density()
    key = density.content_key()
    assert len(key) == 64 and key != cm._log_density.content_key()
    assert key == model.condition(data)._sampler_density()[0].content_key()
