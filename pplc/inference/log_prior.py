"""The log prior of each latent at each draw: ArviZ's `log_prior` group.

ArviZ's prior-sensitivity checks (`arviz.psens`, power-scaling: Kallioinen et al. 2023)
read the log prior and the pointwise log-likelihood of every draw. The log prior of a
latent is the sum of the terms of its `~` statements (`beta: real[K] ~ Normal(0, 10)`:
sum over k of log Normal(beta[k] | 0, 10)), evaluated on the model in the user's own
parameterization (no noncentering, so `theta`'s prior is `theta`'s statement, not that of
the sampler's `theta_std`) and without the Jacobian of any transform.

Terms that are neither a latent's prior nor an observation's likelihood (`factor`
statements, and the sums a marginalization makes of a discrete latent's prior with its
observations' likelihood) are not priors of any one latent: `unassigned` names them, and
the caller says so rather than leave them out silently.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import numpy as np

from pplc.ir.graph import Kind


def log_prior_program(lowered) -> tuple[Callable, list, dict]:
    """(jit(flat, data) -> each statement's term at each row of `flat`, the statements in
    that order once it has been traced, statement -> its variable) for `lowered`'s
    unconstrained points. Made once per lowering and kept, so that new data of the same
    shapes reuse its compiled program."""
    owner = {}
    for variable in lowered.graph.variables():
        for piece in variable.pieces:
            owner[id(piece)] = variable
    order: list = []

    def terms(u, data):
        pieces = lowered.terms(u, data)
        order[:] = [piece for piece, _ in pieces]
        return [value for _, value in pieces]

    program = jax.jit(lambda flat, data: jax.lax.map(lambda u: terms(u, data), flat,
                                                      batch_size=256))
    return program, order, owner


def log_prior(program: tuple[Callable, list, dict], flat: jax.Array, data: Mapping
              ) -> tuple[dict[str, np.ndarray], list[str]]:
    """(latent name -> its log prior at each row of `flat`; the names of the statements
    whose terms belong to no latent's prior), with a `log_prior_program`.

    Example:
        >>> program = log_prior_program(lowered)                   # doctest: +SKIP
        >>> terms, unassigned = log_prior(program, flat, data)    # doctest: +SKIP
        >>> terms["sigma"].shape                                   # doctest: +SKIP
        (4000,)
    """
    run, order, owner = program
    values = run(flat, data)
    out: dict[str, np.ndarray] = {}
    unassigned: list[str] = []
    for piece, value in zip(order, values):
        variable = owner[id(piece)]
        if variable.kind is Kind.LATENT and not variable.internal:
            out[variable.name] = out.get(variable.name, 0.0) + np.asarray(value)
        elif variable.kind is not Kind.OBSERVED and variable.name not in unassigned:
            unassigned.append(variable.name)
    return out, unassigned
