"""Inference tests run in float64, as pplc does (it enables x64 at import)."""

import contextlib

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@contextlib.contextmanager
def _count_compiles():
    """Counts XLA backend compilations (the event JAX emits for every executable it builds)."""
    events = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture
def count_compiles():
    """`with count_compiles() as events:` collects the compilations inside the block."""
    return _count_compiles
