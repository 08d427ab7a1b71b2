"""Drawing summed-out discrete latents back, one joint draw per posterior draw.

The marginalization pass (`pplc/passes/marginalize.py`) takes discrete latents out of the
density; the sampler draws only the continuous parameters theta. For each draw of theta,
this module draws the discrete latents from their exact conditional p(z | theta, data),
so that (theta, z) is a draw of the joint posterior:

- A **mixture's** assignments `z[n]` (one piece, read element by element by observations
  in the same loops, read by nothing else) enter the joint density only through their own
  terms, log D(z[n] | theta) + sum log F(y | ..., z[n]); given theta they are independent,
  so drawing each from its recorded conditional log P(z[n] = k | theta, y) is a joint draw.
- A **Markov chain** `z[0..T)` is not: its elements are tied by the transitions. A path is
  drawn by forward filtering-backward sampling from the chain's log terms, which the pass
  records (`marginalize.chain_term`): alpha_t = p(z[t], y[0..t] | theta) forward, then
  z[T-1] ~ alpha_{T-1}, z[t] ~ alpha_t(k) A_t[k, z[t+1]] backwards.

`NAME_prob` keeps the per-element probabilities the pass recorded: a mixture's exact
conditional P(z[n] = k | theta, y), a chain's smoothed marginal P(z[t] = k | theta, y[0..T))
(the distribution of each z[t] alone; the drawn paths are joint).
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from pplc.frontend import ast
from pplc.ir.graph import Graph
from pplc.passes.marginalize import CHAIN_TERMS, chain_term, mixture_terms


def draw_summed_out(graph: Graph, draws: dict[str, np.ndarray], data: Mapping[str, object],
                    lead: tuple[int, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Replace, in `draws` (name -> (*lead, *shape)), each summed-out latent's recorded log
    probabilities by drawn values and `NAME_prob`, and drop the chains' internal terms.

    A value the draws lack was computed once from the data (all its inputs are data): it
    is read from `data` and is the same for every draw. Returns `draws`."""
    for variable in graph.variables():
        if not variable.marginalized:
            continue
        name = variable.name
        log_probs = recorded(name, draws, data, lead)
        if log_probs is None:
            continue
        terms = [recorded(chain_term(name, part), draws, data, lead) for part in CHAIN_TERMS]
        draws.pop(mixture_terms(name), None)   # read by summed_out_likelihood.py only
        if all(term is not None for term in terms):
            draws[name] = forward_filter_backward_sample(*terms, rng)
        elif _independent_given_the_rest(variable):
            draws[name] = draw_categorical(log_probs, rng)
        else:
            warnings.warn(f"'{name}' is drawn element by element from its marginals, not "
                          f"jointly: its terms for drawing whole paths are not recorded, so "
                          f"its draws have the right marginals but not the right joint "
                          f"distribution (paths switch too often)", stacklevel=3)
            draws[name] = draw_categorical(log_probs, rng)
        draws[f"{name}_prob"] = np.exp(log_probs)
    return draws


def recorded(name: str, draws: dict, data: Mapping, lead: tuple[int, ...],
             keep: bool = False):
    """The recorded value `name` per draw, (*lead, *shape), taken out of `draws` unless
    `keep`; one computed once from the data alone is broadcast to every draw; None if
    neither has it."""
    if name in draws:
        return np.asarray(draws[name] if keep else draws.pop(name), np.float64)
    if name in data:   # computed once from data only: the same for every draw
        value = np.asarray(data[name], np.float64)
        return np.broadcast_to(value, lead + value.shape)
    return None


def _independent_given_the_rest(variable) -> bool:
    """A mixture's recorded conditional: one piece, `log_softmax` over the values, element
    by element. The pass sums out such a variable only when observations read each element
    alone, in its own loops, and nothing else reads it: its elements are independent given
    the continuous parameters."""
    return len(variable.pieces) == 1 and isinstance(variable.pieces[0].value, ast.Call) \
        and variable.pieces[0].value.func == "log_softmax"


def draw_categorical(log_probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One value per row of the last axis, drawn with probabilities exp(log_probs)
    (normalized here), independently across every other axis."""
    probs = np.exp(log_probs - log_probs.max(axis=-1, keepdims=True))
    cumulative = np.cumsum(probs, axis=-1)
    u = rng.uniform(size=probs.shape[:-1] + (1,)) * cumulative[..., -1:]
    return np.minimum((u > cumulative).sum(axis=-1), probs.shape[-1] - 1).astype(np.int64)


def _logsumexp_over_states(x: np.ndarray) -> np.ndarray:
    """log sum_j exp(x[j, ...]) over the leading axis (the states), -inf where every term
    is -inf. State-major arrays (states first, draws last) make each reduction a few
    elementwise operations on vectors as long as the number of draws."""
    top = x.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - top).sum(axis=0)) + top


def _draw_state(log_weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One state per column of log_weights (K, D), with probabilities proportional to
    exp(log_weights[:, d])."""
    weights = np.exp(log_weights - log_weights.max(axis=0))
    cumulative = np.cumsum(weights, axis=0)
    u = rng.uniform(size=log_weights.shape[1]) * cumulative[-1]
    return np.minimum((u > cumulative).sum(axis=0), log_weights.shape[0] - 1)


def forward_filter_backward_sample(initial: np.ndarray, transition: np.ndarray,
                                   emission: np.ndarray, rng: np.random.Generator
                                   ) -> np.ndarray:
    """Paths z[0..T) of a hidden Markov chain, each drawn from p(z | y) as a whole.

    initial (*lead, K) = log p(z[0] = k); transition (*lead, K, K) or (*lead, T - 1, K, K)
    = log p(z[t] = k | z[t - 1] = j) at [..., (t - 1,) j, k]; emission (*lead, T, K) =
    log p(y[t] | z[t] = k). Every leading index is a separate chain (one posterior draw):
    O(T K^2) per draw, vectorized over the draws. Returns int64 (*lead, T)."""
    emission = np.asarray(emission, np.float64)
    lead, (T, K) = emission.shape[:-2], emission.shape[-2:]
    D = int(np.prod(lead, dtype=np.int64))
    # State-major: the draws on the last axis.
    initial = np.asarray(initial, np.float64).reshape(D, K).T
    emission = np.ascontiguousarray(np.moveaxis(emission.reshape(D, T, K), 0, -1))  # T, K, D
    transition = np.asarray(transition, np.float64)
    varying = transition.ndim == len(lead) + 3
    transition = np.ascontiguousarray(np.moveaxis(
        transition.reshape((D, T - 1, K, K) if varying else (D, K, K)), 0, -1))

    def step(t):  # log A for the step z[t] -> z[t + 1]: (K from, K to, D)
        return transition[t] if varying else transition

    # Forward: log alpha_t(k) = log p(z[t] = k, y[0..t]) less a constant per draw (each
    # step normalized, which leaves the backward conditionals as they are and keeps long
    # chains from underflowing).
    log_alpha = np.empty((T, K, D))
    current = initial + emission[0]
    log_alpha[0] = current - _logsumexp_over_states(current)
    for t in range(1, T):
        current = _logsumexp_over_states(log_alpha[t - 1][:, None, :] + step(t - 1)) \
            + emission[t]
        log_alpha[t] = current - _logsumexp_over_states(current)
    # Backward: z[T-1] ~ alpha_{T-1}; z[t] | z[t+1] ~ alpha_t(k) A_t[k, z[t+1]].
    z = np.empty((T, D), np.int64)
    draws = np.arange(D)
    z[T - 1] = _draw_state(log_alpha[T - 1], rng)
    for t in range(T - 2, -1, -1):
        into_next = step(t)[:, z[t + 1], draws]          # (K, D): log A_t[k, z[t+1]]
        z[t] = _draw_state(log_alpha[t] + into_next, rng)
    return z.T.reshape(lead + (T,))
