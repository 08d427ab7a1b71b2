"""Bernoulli(logits=...) adds -inf for a count outside {0, 1} instead of selecting it
(densities.py bernoulli_logits_lp: the select's transpose cost the hierarchical logistic's
gradient ~30%). The numbers must be the select's: values and gradients to 1e-12 relative,
in both tails and at huge logits, and -inf outside the support."""

import jax
import jax.numpy as jnp
import numpy as np

from pplc.runtime import densities
from pplc.runtime.numerics import masked, softplus


def _selected(k, logits):
    """The form before: `masked`, whose -inf is a select over the rows."""
    return masked((k == 0) | (k == 1), k, 0.0,
                  lambda v: -softplus(jnp.where(v == 1, -logits, logits)))


def test_values_and_gradients_equal_the_selected_form():
    logits = np.array([-800.0, -40.0, -3.0, -1e-9, 0.0, 2.5, 40.0, 800.0] * 2)
    k = np.repeat([0.0, 1.0], 8)

    def both(form):
        return jax.jit(lambda l: (form(k, l), jax.grad(lambda m: jnp.sum(form(k, m)))(l)))(
            logits)

    for now, before in zip(both(densities.bernoulli_logits_lp), both(_selected)):
        np.testing.assert_allclose(np.asarray(now), np.asarray(before), rtol=1e-12, atol=0)
    outside = jax.jit(densities.bernoulli_logits_lp)(np.array([-1.0, 0.5, 2.0]),
                                                     np.array([0.3, -800.0, 800.0]))
    assert np.all(np.isneginf(np.asarray(outside)))
