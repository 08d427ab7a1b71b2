"""The generated modules' own helpers (pplc/backends/codegen/helpers.py), tested as code:
a built module copies them by source, so a bug here is a wrong value in every module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.backends.codegen import helpers


def test_over_stacks_nested_loops_outermost_first():
    out = helpers._over(lambda i, j: 10 * i + j, range(1, 3), range(0, 4))
    np.testing.assert_array_equal(out, [[10, 11, 12, 13], [20, 21, 22, 23]])
    assert float(helpers._sum_over(lambda i, j: 10 * i + j, range(1, 3), range(0, 4))) == 132


def test_assemble_scatters_pieces_and_zero_fills():
    first = helpers._over(lambda t: ((t,), 2.0 * t), range(1, 4))
    base = ((jnp.array([0]),), jnp.array([7.0]))
    array = helpers._assemble((5,), base, first)
    np.testing.assert_array_equal(array, [7.0, 2.0, 4.0, 6.0, 0.0])


def test_split_cuts_blocks_and_refuses_a_wrong_length():
    a, b = helpers._split(jnp.arange(7.0), [(2, 2), (3,)])
    np.testing.assert_array_equal(a, [[0, 1], [2, 3]])
    np.testing.assert_array_equal(b, [4, 5, 6])
    with pytest.raises(ValueError, match="expected a vector of 7"):
        helpers._split(jnp.arange(8.0), [(2, 2), (3,)])


def test_bound_array_keeps_each_pieces_bounds():
    low = helpers._over(lambda i: ((i,), 1.0 * i), range(0, 2))
    high = helpers._over(lambda i: ((i,), -1.0), range(2, 4))
    np.testing.assert_array_equal(helpers._bound_array((4,), low, high), [0, 1, -1, -1])


def test_read_data_binds_sizes_as_ints_and_refuses_missing_entries():
    declared = {"N": "int", "y": "real[N]", "k": None}
    n, y, k = helpers._read_data({"N": 3, "y": [1, 2, 3], "k": [1, 2]}, declared, {}, "N", "y",
                                 "k")
    assert n == 3 and isinstance(n, int)
    assert y.dtype == jnp.float64 and k.dtype == jnp.int64
    with pytest.raises(ValueError, match="missing entries"):
        helpers._read_data({"y": [1.0, None]}, declared, {}, "y")
    with pytest.raises(KeyError, match="data 'N' is missing"):
        helpers._read_data({}, declared, {}, "N")


def test_fill_and_fold_draw_each_element_from_its_own_stream():
    key = jax.random.PRNGKey(0)
    draws = helpers._fill(jnp.zeros(3), lambda i: ((i,), jax.random.normal(
        helpers._fold(key, (i,)))), range(3))
    assert len(set(np.asarray(draws).tolist())) == 3
    assert float(draws[1]) == float(jax.random.normal(jax.random.fold_in(key, 1)))


def test_read_data_refuses_sizes_other_than_those_the_module_was_built_for():
    declared = {"T": "int"}
    assert helpers._read_data({"T": 6}, declared, {"T": 6}, "T") == [6]
    with pytest.raises(ValueError, match="built for T = 6, not 7"):
        helpers._read_data({"T": 7}, declared, {"T": 6}, "T")
