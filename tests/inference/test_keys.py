"""The run's keys, computed on the host (keys.py), have the bits of the eager derivation
that every earlier release used (`split(PRNGKey(seed))`), so a seed gives the same draws
as before; and `split_keys` gives `jax.random.split`'s bits. Checked on many seeds across
the int64 range, in both of JAX's split layouts, against JAX's own compiled programs; keys
the host does not compute (typed, another PRNG) go to jitted programs compiled at LLVM's
level 0, checked the same way."""

import jax
import numpy as np
import pytest

from pplc.inference import keys
from pplc.inference.keys import seed_keys, split_keys
from pplc.inference.programs import RUN_ONCE
from pplc.options import SEED_MAX


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 + 5, SEED_MAX])
def test_seed_keys_equal_the_eager_split(seed):
    init_key, run_key = seed_keys(seed)
    expected = jax.random.split(jax.random.PRNGKey(seed))
    np.testing.assert_array_equal(np.asarray(init_key), np.asarray(expected[0]))
    np.testing.assert_array_equal(np.asarray(run_key), np.asarray(expected[1]))


def _many_seeds() -> np.ndarray:
    """Edges of each 32-bit half and 400 random seeds up to SEED_MAX."""
    edges = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**62, SEED_MAX - 1, SEED_MAX]
    drawn = np.random.default_rng(20261207).integers(0, SEED_MAX, 400, dtype=np.int64,
                                                     endpoint=True)
    return np.concatenate([np.array(edges, np.int64), drawn])


def test_seed_keys_equal_jax_compiled_split_on_many_seeds():
    """JAX's compiled derivation (a vmap of it, one call) gives the same bits as the host's,
    seed by seed."""
    seeds = _many_seeds()
    optimized = jax.jit(jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s))))(seeds)
    ours = np.stack([np.stack([np.asarray(k) for k in seed_keys(int(s))]) for s in seeds])
    np.testing.assert_array_equal(ours, np.asarray(optimized))


@pytest.mark.parametrize("num", [1, 2, 4, 7])
def test_split_keys_equals_jax_random_split(num):
    """Raw keys from many seeds and a typed key: the chains' keys sample_nuts draws from."""
    for seed in _many_seeds()[:60]:
        raw = seed_keys(int(seed))[1]
        np.testing.assert_array_equal(np.asarray(split_keys(raw, num)),
                                      np.asarray(jax.random.split(raw, num)))
    typed = jax.random.key(11)
    ours, expected = split_keys(typed, num), jax.random.split(typed, num)
    assert ours.dtype == expected.dtype and ours.shape == expected.shape == (num,)
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(ours)),
                                  np.asarray(jax.random.key_data(expected)))


@pytest.mark.parametrize("partitionable", [True, False])
def test_both_split_layouts_on_many_seeds(partitionable):
    """`jax_threefry_partitionable` changes the split's counters and layout (JAX's default
    is True); the host follows the flag."""
    with jax.threefry_partitionable(partitionable):
        for seed in _many_seeds()[:120]:
            ours = np.stack([np.asarray(k) for k in seed_keys(int(seed))])
            expected = jax.random.split(jax.random.PRNGKey(int(seed)))
            np.testing.assert_array_equal(ours, np.asarray(expected))
            np.testing.assert_array_equal(np.asarray(split_keys(ours[1], 5)),
                                          np.asarray(jax.random.split(expected[1], 5)))


def test_raw_threefry_keys_run_no_program(count_compiles, monkeypatch):
    """The point of keys.py: a run's keys cost no XLA compile (and no jitted fallback)."""
    def refuse(*args):
        raise AssertionError("the jitted fallback ran for a raw threefry key")
    monkeypatch.setattr(keys, "_split_seed", refuse)
    monkeypatch.setattr(keys, "_split", refuse)
    with count_compiles() as compiled:
        init_key, run_key = seed_keys(2**40 + 17)
        chains = split_keys(run_key, 13)   # a count no other test uses
    assert compiled == []
    assert isinstance(chains, jax.Array) and chains.shape == (13, 2)
    assert init_key.dtype == run_key.dtype == chains.dtype == np.uint32


def test_another_prng_goes_to_the_jitted_programs():
    with jax.default_prng_impl("rbg"):
        ours = seed_keys(5)
        expected = jax.random.split(jax.random.PRNGKey(5))
        np.testing.assert_array_equal(np.stack([np.asarray(k) for k in ours]), expected)
        np.testing.assert_array_equal(np.asarray(split_keys(ours[1], 3)),
                                      np.asarray(jax.random.split(ours[1], 3)))


def test_the_key_programs_are_compiled_at_level_0():
    """The fallbacks: XLA is asked for RUN_ONCE for both programs (the cheaper compile). Read from JAX's lowering (a private field: if JAX renames it, this fails
    loudly rather than passing)."""
    assert RUN_ONCE == {"xla_backend_optimization_level": 0}
    for lowered in (keys._split_seed.lower(np.int64(0)),
                    keys._split.lower(jax.random.PRNGKey(0), 4)):
        assert dict(lowered._lowering._compiler_options_kvs) == RUN_ONCE
