"""Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry 2024).

Importance weights p/q say how far an approximation q is from the posterior p, and PSIS
makes them usable: the largest ratios are smoothed by a generalized Pareto fitted to the
tail, whose shape k-hat is itself the diagnostic (k < 0.7: the weights, and estimates from
them, are reliable). Pathfinder pools its paths with these weights; variational fits
report k-hat.
"""

from __future__ import annotations

import math

import numpy as np


def gpd_fit(x: np.ndarray) -> tuple[float, float]:
    """Generalized Pareto (k, sigma) of sorted exceedances x > 0, Zhang & Stephens (2009).

    The profile-likelihood-weighted estimate of theta = -k/sigma over a grid, then k shrunk
    toward 0.5 by a weakly informative prior worth 10 observations (Vehtari+ 2024, App. C).
    """
    n = len(x)
    m = 30 + int(math.sqrt(n))
    theta = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    theta = theta / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = -np.mean(np.log1p(-theta[:, None] * x), axis=1)  # k(theta), Zhang-Stephens sign
    log_lik = n * (np.log(theta / k) + k - 1.0)
    w = 1.0 / np.exp(log_lik[None, :] - log_lik[:, None]).sum(axis=1)
    keep = w >= 10 * np.finfo(float).eps
    w, theta = w[keep] / w[keep].sum(), theta[keep]
    theta_hat = np.sum(theta * w)
    xi = np.mean(np.log1p(-theta_hat * x))  # shape parameter, > 0 for a heavy tail
    sigma = -xi / theta_hat
    xi = (n * xi + 10 * 0.5) / (n + 10)
    return float(xi), float(sigma)


def psis(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance sampling: (normalized log weights, k-hat).

    The largest M = ceil(min(0.2 S, 3 sqrt(S))) ratios are replaced by the expected order
    statistics of a generalized Pareto fitted to them, and truncated at the largest raw
    ratio (Vehtari, Simpson, Gelman, Yao & Gabry 2024). Non-finite ratios get weight 0.
    k-hat is -inf when the ratios are constant to rounding (nothing to smooth), +inf when
    there are too few or they cannot be fitted.
    """
    lw = np.asarray(log_ratios, dtype=float).copy()
    finite = np.isfinite(lw)
    if not finite.any():
        return np.full_like(lw, -np.inf), float("inf")
    lw[~finite] = -np.inf
    lw -= lw[finite].max()
    S = int(finite.sum())
    M = int(math.ceil(min(0.2 * S, 3.0 * math.sqrt(S))))
    k = float("inf")
    if M >= 5 and S > M:
        order = np.argsort(lw)  # -inf first
        tail = order[-M:]
        cutoff = lw[order[-M - 1]]
        if np.isfinite(cutoff):
            exceed = np.exp(lw[tail]) - np.exp(cutoff)
            if exceed[int(M / 4 + 0.5) - 1] <= 1e-12 * np.exp(cutoff):
                # The ratios are constant to rounding (an exact approximation): no tail.
                k = float("-inf")
            else:
                with np.errstate(all="ignore"):
                    k, sigma = gpd_fit(exceed)
                if not np.isfinite(k):
                    k = float("inf")
                elif sigma > 0:
                    p = (np.arange(1, M + 1) - 0.5) / M
                    q = sigma * (np.expm1(-k * np.log1p(-p)) / k if abs(k) > 1e-12 else -np.log1p(-p))
                    lw[tail] = np.minimum(np.log(q + np.exp(cutoff)), 0.0)
    m = lw[finite].max()
    lw -= m + np.log(np.sum(np.exp(lw[finite] - m)))
    return lw, k


def far_from_posterior(what: str, k: float, draws: int) -> str | None:
    """The plain-words warning for an approximation whose k-hat says it is unreliable
    (above 0.7, Vehtari et al. 2024), or None; none from fewer than 100 draws, too few
    for k-hat itself (psis gives inf below 25)."""
    if not k > 0.7 or draws < 100:
        return None
    return (f"{what} is far from the posterior: the Pareto k-hat of its importance weights "
            f"is {k:.2f} (above 0.7), so its means and sds can be badly off even when it "
            "reports convergence; sample with NUTS (pplc sample) instead")
