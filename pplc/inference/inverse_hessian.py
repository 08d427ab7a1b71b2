"""The inverse Hessian an L-BFGS history stands for, in compact low-rank-plus-diagonal form.

Why a module of its own: it is the one piece of linear algebra between the optimizer and the
approximation. Pathfinder's L-BFGS path (inference/pathfinder.py, inference/lbfgs.py) keeps
at each iterate x_l the last `history_size` pairs (s_i, z_i) = (x_{i+1} - x_i, g_i - g_{i+1})
and a diagonal alpha; these determine an inverse Hessian in compact form (Byrd, Nocedal &
Schnabel 1994; Zhang, Carpenter, Gelman & Vehtari 2022, eq. II.1-2),

    Sigma = diag(alpha) + beta gamma beta^T,      beta = [diag(alpha) Z, S]
    gamma = [[0, -R^-1], [-R^-T, R^-T (D + Z^T diag(alpha) Z) R^-1]],  R = triu(S^T Z), D = diag(S^T Z)

which Pathfinder's Gaussian N(mu, Sigma) factors further (a thin QR of diag(alpha)^-1/2 beta)
so that drawing from it costs O(dim m^2), never O(dim^3); `inverse_hessian` forms the dense
matrix, for tests and small problems only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

Array = jax.Array


class Approximation(NamedTuple):
    """What determines N(mu, Sigma) at one iterate: the point, its gradient, the history.

    S, Z: (history_size, dim), oldest pair first; rows of pairs not (yet) accepted are zero
    and `valid` is False there.
    """

    position: Array
    grad: Array
    alpha: Array
    S: Array
    Z: Array
    valid: Array


def inverse_hessian_factors(a: Approximation) -> tuple[Array, Array]:
    """(beta, gamma) of Sigma = diag(alpha) + beta gamma beta^T (paper eq. II.1-2)."""
    m = a.S.shape[0]
    SZ = a.S @ a.Z.T  # (m, m): s_i . z_j
    # Unused slots have zero rows in S and Z; a unit diagonal keeps R invertible and, since
    # their columns of beta are zero, adds nothing to Sigma.
    R = jnp.triu(SZ) + jnp.diag(jnp.where(a.valid, 0.0, 1.0))
    D = jnp.diag(jnp.diag(SZ))
    R_inv = solve_triangular(R, jnp.eye(m, dtype=R.dtype), lower=False)
    ZaZ = (a.Z * a.alpha) @ a.Z.T
    gamma = jnp.block([
        [jnp.zeros((m, m), R.dtype), -R_inv],
        [-R_inv.T, R_inv.T @ (D + ZaZ) @ R_inv],
    ])
    beta = jnp.concatenate([(a.Z * a.alpha).T, a.S.T], axis=1)  # (d, 2m)
    return beta, gamma


def inverse_hessian(a: Approximation) -> Array:
    """Dense Sigma (dim, dim), for tests and small problems."""
    beta, gamma = inverse_hessian_factors(a)
    return jnp.diag(a.alpha) + beta @ gamma @ beta.T
