"""take_last picks a category's entry by a select and a sum, not a gather (densities.py):
the same numbers as the gather it replaced, and a gradient with no scatter in it, so that
XLA:CPU can compile a loop over a summed-out mixture's gradient into one function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.runtime import densities

EXAMPLE = "examples/gaussian_mixture"


def _gather_take_last(table, k, batch):
    """The lowering before the select: a gather (its gradient a scatter-add)."""
    table = jnp.broadcast_to(table, batch + table.shape[-1:])
    index = jnp.broadcast_to(k, batch).astype(int)[..., None]
    return jnp.take_along_axis(table, index, axis=-1)[..., 0]


def _both(monkeypatch, cases):
    """(values, gradients) of each (fn, *args) case, with the present take_last and with
    the gather; each side is one compiled program (JAX caches traces by function, so each
    side gets its own)."""
    def run():
        def all_cases(cases_args):
            return [jax.value_and_grad(lambda *a, fn=fn: jnp.sum(fn(*a)),
                                       tuple(range(1, len(args))))(*args)
                    for (fn, _), args in zip(cases, cases_args)]   # d/d all but k
        return jax.jit(all_cases)([args for _, args in cases])

    now = run()
    with monkeypatch.context() as m:
        m.setattr(densities, "take_last", _gather_take_last)
        before = run()
    return now, before


def _assert_equal(now, before):
    for a, b in zip(jax.tree_util.tree_leaves(now), jax.tree_util.tree_leaves(before)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0)


@pytest.mark.parametrize("K", [3, densities.PICK_BY_SELECT + 1])
def test_categorical_and_ordered_logistic_equal_the_gather(monkeypatch, K):
    """Per-element log-probabilities and their gradients, counts drawn from the data (k
    traced) and a constant count (a summed-out latent's k), with K on both sides of the
    select's bound; values outside the support stay -inf where they were."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, K))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    k = rng.integers(0, K, 7).astype(float)
    cut = np.sort(rng.normal(size=K - 1))
    eta = rng.normal(size=7)
    cases = [(densities.categorical_probs_lp, (k, probs)),
             (densities.categorical_logits_lp, (k, logits)),
             (densities.ordered_logistic_lp, (k, eta, cut))]
    cases += [(lambda _, w, c=c: densities.categorical_probs_lp(jnp.asarray(c), w),
               (0.0, probs[0])) for c in (0.0, K - 1.0)]
    _assert_equal(*_both(monkeypatch, cases))
    outside = np.array([-1.0, 1.5, float(K)])
    got = jax.jit(densities.categorical_probs_lp)(outside, probs[:3])
    assert np.all(np.isneginf(np.asarray(got)))


def test_summed_out_mixture_gradient_equals_the_gather_and_has_no_scatter(monkeypatch):
    """The mixture as pplc lowers it (examples/gaussian_mixture, 200 points, K = 3): its log
    density and gradient at three points equal the gather lowering's to 1e-12 relative, and
    the gradient's program holds no scatter (the gather's transpose), which is what keeps
    XLA:CPU from compiling a loop over it into one function."""
    import pplc

    cm = pplc.compile(open(f"{EXAMPLE}/model.ppl").read()).condition(f"{EXAMPLE}/data.json")
    fn, data = cm.lowered.log_density, cm.data
    points = np.random.default_rng(1).uniform(-2, 2, (3, cm.dim))

    def traced():
        """A new value-and-gradient function: JAX caches traces by function."""
        vg = jax.jit(jax.value_and_grad(lambda x, d: fn(x, d)))
        return [vg(x, data) for x in points], str(jax.make_jaxpr(vg)(points[0], data))

    now, program = traced()
    with monkeypatch.context() as m:
        m.setattr(densities, "take_last", _gather_take_last)
        before, gather_program = traced()
    _assert_equal(now, before)
    assert "scatter" in gather_program       # what the check below would catch
    assert "scatter" not in program
