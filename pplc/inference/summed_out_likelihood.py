"""The pointwise log-likelihood of observations that a summed-out discrete latent took into
its sum: the input of PSIS-LOO (`arviz.loo`, `arviz.compare`) for mixtures and hidden
Markov models, computed from the log terms the marginalization pass records with each draw.

- A **mixture** `z[n] ~ D(w); y[n] ~ F(phi[z[n]])`: the pointwise term is
  log p(y[n] | parameters) = logsumexp_k terms[n, k], with terms[n, k] = log D(k | w) +
  log F(y[n] | phi[k]) (`marginalize.mixture_terms`). It is the density of y[n] with its
  own assignment integrated out: leaving y[n] out must leave out what it alone tells
  about z[n] too, which a term given the drawn z[n] would not.
- A **Markov chain** `z[t] ~ D(z[t - 1]); y[t] ~ F(phi[z[t]])`: the observations are not
  independent given the parameters, so the pointwise term is the leave-one-out predictive
  density of a non-factorized model (Bürkner, Gabry & Vehtari 2021),
  log p(y[t] | y[-t], parameters) = log p(y) - log p(y[-t]). Both come from one forward
  and one backward pass, O(T K^2) per draw: p(y[-t]) = sum_k a_t(k) b_t(k), with a_t the
  forward message before the emission at t and b_t the backward message after it.

Only a latent whose observations are one variable, read element by element in the
latent's own loops, gets a pointwise term (the terms of two variables at one element
cannot be told apart); `unsplit` names the others, for the caller to say so.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from pplc.frontend.library import DISTRIBUTIONS
from pplc.inference.discrete import recorded
from pplc.ir.graph import Graph, Kind
from pplc.passes.marginalize import CHAIN_TERMS, chain_term, mixture_terms


def summed_out_log_likelihood(written: Graph, optimized: Graph, values: Mapping[str, np.ndarray],
                              data: Mapping[str, object], lead: tuple[int, ...],
                              shapes: Mapping[str, tuple[int, ...]]
                              ) -> tuple[dict[str, np.ndarray], list[str]]:
    """(observed name -> pointwise log-likelihood (*lead, *batch shape), observed names
    that get none). `values` are the constrained draws with the pass's recorded terms
    (name -> (*lead, *shape)); `written` is the model as written, `shapes` its shapes."""
    out, unsplit = {}, []
    for variable in optimized.variables():
        if not variable.marginalized:
            continue
        observed = _observed_children(written, variable.name)
        target = _pointwise_target(written, variable.name, observed, shapes)
        if target is None:
            unsplit.extend(observed)
            continue
        chain = [recorded(chain_term(variable.name, part), values, data, lead, keep=True)
                 for part in CHAIN_TERMS]
        if all(term is not None for term in chain):
            out[target] = chain_leave_one_out(*chain)
            continue
        terms = recorded(mixture_terms(variable.name), values, data, lead, keep=True)
        if terms is None:
            unsplit.append(target)
            continue
        out[target] = _logsumexp(terms, axis=-1)
    return out, unsplit


def _observed_children(graph: Graph, name: str) -> list[str]:
    return [child for child in graph.dag.successors(name)
            if graph[child].kind is Kind.OBSERVED]


def _pointwise_target(graph: Graph, name: str, observed: list[str],
                      shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """The one observed variable whose elements pair with the latent's, or None."""
    if len(observed) != 1:
        return None
    child, latent = graph[observed[0]], graph[name]
    loops = {tuple(p.index for p in piece.plates) for piece in latent.pieces if piece.plates}
    if len(child.pieces) != 1 or len(loops) > 1:
        return None
    piece = child.pieces[0]
    index = tuple(getattr(i, "id", None) for i in piece.indices or ())
    if index != tuple(p.index for p in piece.plates) or (loops and index != next(iter(loops))):
        return None
    event_ndim = DISTRIBUTIONS[piece.distribution.func].event_ndim
    batch = tuple(shapes[child.name])[:len(shapes[child.name]) - event_ndim]
    if batch != tuple(shapes[name])[:len(index)] or len(batch) != len(index):
        return None
    return child.name


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top,
                          axis=axis)


def chain_leave_one_out(initial: np.ndarray, transition: np.ndarray, emission: np.ndarray
                        ) -> np.ndarray:
    """log p(y[t] | y[-t]) for every t, (*lead, T), from a chain's log terms: initial
    (*lead, K), transition (*lead, K, K) or (*lead, T - 1, K, K) at [(t - 1,) j, k] =
    log p(z[t] = k | z[t - 1] = j), emission (*lead, T, K) = log p(y[t] | z[t] = k)."""
    emission = np.asarray(emission, np.float64)
    T = emission.shape[-2]
    lead = emission.shape[:-2]
    transition = np.asarray(transition, np.float64)
    varying = transition.ndim == len(lead) + 3
    step = (lambda t: transition[..., t, :, :]) if varying else (lambda t: transition)
    # before[t](k) = log p(z[t] = k, y[0..t)); after[t](k) = log p(y(t..T) | z[t] = k).
    before = np.empty(emission.shape)
    before[..., 0, :] = initial
    for t in range(1, T):
        joint = before[..., t - 1, :] + emission[..., t - 1, :]
        before[..., t, :] = _logsumexp(joint[..., :, None] + step(t - 1), axis=-2)
    after = np.zeros(emission.shape)
    for t in range(T - 2, -1, -1):
        ahead = emission[..., t + 1, :] + after[..., t + 1, :]
        after[..., t, :] = _logsumexp(step(t) + ahead[..., None, :], axis=-1)
    log_p = _logsumexp(before[..., -1, :] + emission[..., -1, :], axis=-1)
    without = _logsumexp(before + after, axis=-1)          # log p(y[-t]), (*lead, T)
    return log_p[..., None] - without
