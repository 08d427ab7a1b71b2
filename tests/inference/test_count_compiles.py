"""The `count_compiles` fixture, which the tests of program reuse rely on, still sees a
program that is built again when the session's persistent cache (tests/conftest.py)
supplies it from disk: JAX emits its compile event around the cache lookup too. Without
this, a test asserting "new data of the same shapes compile nothing" would pass vacuously
whenever the disk cache answered."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def test_a_program_built_again_is_counted_even_when_loaded_from_the_disk_cache(count_compiles):
    if not jax.config.jax_compilation_cache_dir:
        pytest.skip("the session runs without a persistent compilation cache")
    hits = []

    def on_event(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    def program():
        """A new function object each call, with the same name and body: jit's in-memory
        cache (by function object) misses, the disk cache (by program text) does not. Not
        jax.clear_caches(), which would make every later test in this process compile its
        programs again."""
        def f(x):  # a program of its own: no other test compiles it
            return jnp.sin(x) * 1.2345 + jnp.cos(x) ** 3
        return f

    x = np.arange(7.0)
    jax.monitoring.register_event_listener(on_event)
    try:
        with count_compiles() as first:
            jax.jit(program())(x).block_until_ready()
        with count_compiles() as again:  # the same program again, loaded from disk
            jax.jit(program())(x).block_until_ready()
    finally:
        jax.monitoring.unregister_event_listener(on_event)
    assert hits, "the second build did not come from the disk cache: the test proves nothing"
    assert len(first) == 1 and len(again) == 1
