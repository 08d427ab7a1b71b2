"""The run's keys come from one compiled program, with the bits of the eager derivation
that every earlier release used (`split(PRNGKey(seed))`), so a seed gives the same draws
as before."""

import jax
import numpy as np
import pytest

from pplc.inference.keys import seed_keys
from pplc.options import SEED_MAX


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 + 5, SEED_MAX])
def test_seed_keys_equal_the_eager_split(seed):
    init_key, run_key = seed_keys(seed)
    expected = jax.random.split(jax.random.PRNGKey(seed))
    np.testing.assert_array_equal(np.asarray(init_key), np.asarray(expected[0]))
    np.testing.assert_array_equal(np.asarray(run_key), np.asarray(expected[1]))
