"""The language's built-in functions (LANGUAGE.md, "Functions"), implemented with jax.numpy.

Names and meanings follow NumPy; elementwise functions broadcast. Sizes given to `zeros`
and `ones` must be known when the model is compiled (data sizes), as JAX needs static
shapes.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

from pplc.frontend.library import BUILTINS


def _reduce_or_elementwise(reduce, pairwise):
    def fn(*args):
        if len(args) == 1:
            return reduce(jnp.asarray(args[0]))
        out = args[0]
        for a in args[1:]:
            out = pairwise(out, a)
        return out
    return fn


def _sizes(*args):
    shape = []
    for a in args:
        try:
            shape.append(int(a))
        except (TypeError, jax.errors.ConcretizationTypeError):
            raise ValueError("sizes given to zeros/ones must be data sizes known when the "
                             "model is compiled") from None
    return tuple(shape)


def _length(x):
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("len() of a scalar")
    return x.shape[0]


def _concat(*args):
    return jnp.concatenate([jnp.atleast_1d(jnp.asarray(a)) for a in args])


def _stack(*args):
    if len(args) == 1:
        return jnp.asarray(args[0])
    return jnp.stack(jnp.broadcast_arrays(*args))


# The helpers that built-ins name with a bare `jax` (frontend/library.py's BUILTINS).
HELPERS: dict[str, Callable] = {
    "min": _reduce_or_elementwise(jnp.min, jnp.minimum),
    "max": _reduce_or_elementwise(jnp.max, jnp.maximum),
    "zeros": lambda *n: jnp.zeros(_sizes(*n)), "ones": lambda *n: jnp.ones(_sizes(*n)),
    "length": _length, "concat": _concat, "stack": _stack,
}


def resolve(dotted: str) -> Callable:
    """A built-in's JAX function from its name in the table: `jnp.linalg.inv`, or a
    helper above."""
    if "." not in dotted:
        return HELPERS[dotted]
    root, *path = dotted.split(".")
    value = {"jnp": jnp, "jax": jax}[root]
    for part in path:
        value = getattr(value, part)
    return value


FUNCTIONS: dict[str, Callable] = {name: resolve(b.jax) for name, b in BUILTINS.items()}


# ---------------------------------------------------------------- built by passes only

def hmm_forward(initial, transition, emission):
    """log p(observations) of a hidden Markov chain, summed over every path (the forward
    algorithm, O(T K^2)): initial[k] = log p(z_0 = k), transition[t - 1, j, k] =
    log p(z_t = k | z_{t-1} = j), emission[t, k] = log p(y_t | z_t = k)."""
    alpha = initial + emission[0]

    def step(alpha, inputs):
        log_transition, log_emission = inputs
        return jsp.logsumexp(alpha[:, None] + log_transition, axis=0) + log_emission, None
    alpha, _ = jax.lax.scan(step, alpha, (transition, emission[1:]))
    return jsp.logsumexp(alpha)


def hmm_smooth(initial, transition, emission):
    """log p(z_t = k | all observations): forward-backward."""
    def forward(alpha, inputs):
        log_transition, log_emission = inputs
        alpha = jsp.logsumexp(alpha[:, None] + log_transition, axis=0) + log_emission
        return alpha, alpha
    alpha0 = initial + emission[0]
    _, alphas = jax.lax.scan(forward, alpha0, (transition, emission[1:]))
    alphas = jnp.concatenate([alpha0[None], alphas])

    def backward(beta, inputs):
        log_transition, log_emission = inputs
        beta = jsp.logsumexp(log_transition + (log_emission + beta)[None, :], axis=1)
        return beta, beta
    beta_last = jnp.zeros_like(alpha0)
    _, betas = jax.lax.scan(backward, beta_last, (transition, emission[1:]), reverse=True)
    betas = jnp.concatenate([betas, beta_last[None]])
    return jax.nn.log_softmax(alphas + betas, axis=-1)


INTERNAL_FUNCTIONS: dict[str, Callable] = {"hmm_forward": hmm_forward, "hmm_smooth": hmm_smooth}
