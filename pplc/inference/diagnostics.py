"""Sampler diagnostics from NUTS statistics, and Stan-like plain-words warnings.

Why these checks: each one flags a way HMC can be wrong while the draws look fine.
  * Divergences: the integrator's energy error blew up (H - H0 > 1000), which happens
    where the posterior's curvature is too high for the step size; the chain then avoids
    that region and the estimates are biased (Betancourt 2017, section 6.2).
  * E-BFMI (Betancourt 2016, "Diagnosing Suboptimal Cotangent Disintegrations in HMC",
    eq. 11): sum_n (E_n - E_{n-1})^2 / sum_n (E_n - mean E)^2 over the energies of one
    chain's draws. It estimates how well the momentum resampling moves the chain across
    energy levels compared with the spread of the marginal energy distribution; below 0.3
    the chain explores the energy distribution (heavy tails, funnels) only slowly. An
    i.i.d. energy sequence gives about 2; an AR(1) one with coefficient r about 2 (1 - r).
    (ArviZ's `bfmi` divides the numerator by N - 1 and the denominator by N, which
    differs by the factor N / (N - 1).)
  * Tree-depth saturation: trajectories stopped by `max_tree_depth` rather than by a
    U-turn; it costs efficiency, not validity (the `reached_max_treedepth` stat, see
    `nuts.py` for how it differs from tree_depth == max_tree_depth).
  * R-hat > 1.01 and ESS < 100 per chain (Vehtari et al. 2021): the chains have not
    mixed, or too few effective draws for the ESS and MCSE estimates themselves to be
    reliable.
  * A heavy tail: the Pareto k-hat of a parameter's largest draws above 0.7 (Vehtari et
    al. 2024, section 3, used on the draws themselves as `posterior::pareto_khat` does),
    or a tail ESS below a tenth of the bulk ESS (capped at the number of draws). A tail that heavy is crossed by few long
    excursions: warmup adapts the step size to the bulk, the extreme quantiles and the
    mean (whose variance may be infinite for k-hat >= 0.5) rest on a few draws, and a
    smaller step size (a higher target acceptance) follows the tail better.

Example:
    >>> import numpy as np
    >>> stats = {"energy": np.array([[0.0, 1.0, 0.0, 1.0]]), "diverging": np.zeros((1, 4), bool),
    ...          "reached_max_treedepth": np.zeros((1, 4), bool)}
    >>> e_bfmi(stats["energy"])
    array([3.])
    >>> diagnose(stats, None, 10)
    []
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

EBFMI_THRESHOLD = 0.3
TAIL_KHAT_THRESHOLD = 0.7
TAIL_ESS_RATIO = 0.1
RHAT_THRESHOLD = 1.01
ESS_PER_CHAIN_THRESHOLD = 100


def e_bfmi(energy: np.ndarray) -> np.ndarray:
    """Energy Bayesian fraction of missing information, one per chain.

    Parameters:
        energy: (chains, draws) Hamiltonian at each draw (the `energy` stat).
    Returns:
        (chains,) sum (E_n - E_{n-1})^2 / sum (E_n - mean E)^2; NaN for a chain with fewer
        than 2 draws or constant energy.
    """
    energy = np.asarray(energy, dtype=float)
    if energy.ndim == 1:
        energy = energy[None]
    if energy.shape[1] < 2:
        return np.full(energy.shape[0], np.nan)
    numerator = np.sum(np.diff(energy, axis=1) ** 2, axis=1)
    denominator = np.sum((energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def tail_khat(draws: np.ndarray) -> float:
    """Pareto k-hat of the right tail of one parameter's draws (all chains pooled).

    The largest M = ceil(min(0.2 S, 3 sqrt(S))) draws' excesses over the next one, fitted
    by a generalized Pareto (`psis.gpd_fit`); NaN from fewer than 100 draws (too few for
    k-hat) or a tail without spread (a constant, a bounded parameter piled at its bound).
    A normal gives about 0, a Student-t with nu degrees of freedom about 1 / nu, a Cauchy 1.
    """
    from pplc.inference.psis import gpd_fit

    x = np.sort(np.asarray(draws, dtype=float).ravel())
    x = x[np.isfinite(x)]
    S = len(x)
    M = int(np.ceil(min(0.2 * S, 3.0 * np.sqrt(S))))
    if S < 100 or M < 5:
        return float("nan")
    exceed = x[-M:] - x[-M - 1]
    if not exceed[int(M / 4 + 0.5) - 1] > 1e-12 * max(abs(x[-M - 1]), 1.0):
        return float("nan")
    with np.errstate(all="ignore"):
        k, _ = gpd_fit(exceed)
    return k if np.isfinite(k) else float("nan")


def heavy_tails(summary: Mapping[str, Mapping[str, float]],
                khats: Mapping[str, float], draws: int | None = None
                ) -> list[tuple[str, str]]:
    """(element, why) for each element whose right tail is heavy: k-hat above
    TAIL_KHAT_THRESHOLD, or a tail ESS below TAIL_ESS_RATIO of its bulk ESS, the bulk
    ESS capped at the number of `draws` (NUTS' antithetic draws give a bulk ESS of
    several times the draws on a light-tailed element, against a tail ESS below them:
    1667 against 171 from 600 draws on a normal-like posterior)."""
    out = []
    for name, s in summary.items():
        k = khats.get(name)
        bulk, tail = s.get("ess_bulk"), s.get("ess_tail")
        if _gt(bulk, 0) and draws:
            bulk = min(bulk, draws)
        if _gt(k, TAIL_KHAT_THRESHOLD):
            out.append((name, f"Pareto k-hat {k:.2f}"))
        elif _gt(bulk, 0) and _lt(tail, TAIL_ESS_RATIO * bulk):
            out.append((name, f"tail ESS {tail:.0f} against bulk ESS {s['ess_bulk']:.0f}"))
    return out


def count_divergences(stats: Mapping[str, np.ndarray]) -> int:
    """Divergent transitions among the draws (warmup excluded, as in Stan)."""
    return int(np.sum(stats["diverging"]))


def tree_depth_saturation(stats: Mapping[str, np.ndarray], max_tree_depth: int | None = None) -> int:
    """Draws whose trajectory hit the depth limit.

    Uses the `reached_max_treedepth` stat when present; otherwise counts tree_depth >=
    max_tree_depth, Stan's rule.
    """
    if "reached_max_treedepth" in stats:
        return int(np.sum(stats["reached_max_treedepth"]))
    if max_tree_depth is None:
        raise ValueError("stats have no 'reached_max_treedepth'; pass max_tree_depth")
    return int(np.sum(np.asarray(stats["tree_depth"]) >= max_tree_depth))


def _percent(k: int, n: int) -> str:
    return f"{k} of {n} ({100.0 * k / max(n, 1):.2g}%)"


def diagnose(
    stats: Mapping[str, np.ndarray],
    summary: Mapping[str, Mapping[str, float]] | None = None,
    max_tree_depth: int = 10,
    khats: Mapping[str, float] | None = None,
) -> list[str]:
    """Plain-words warnings in the spirit of Stan's `diagnose`; empty when all is well.

    Parameters:
        stats: per-draw stats, each (chains, draws): `diverging`, `energy`, and
            `reached_max_treedepth` (or `tree_depth`).
        summary: optional {name: {"r_hat", "ess_bulk", "ess_tail", ...}}, e.g. the
            "parameters" of the summary JSON; adds the R-hat and ESS checks.
        max_tree_depth: the limit the run used (for the message, and for the count when
            `reached_max_treedepth` is absent).
        khats: optional {element: `tail_khat` of its draws}, named as in `summary`; adds
            the heavy-tail check (with the ESS in `summary`).
    """
    messages: list[str] = []
    diverging = np.asarray(stats["diverging"])
    num_chains = diverging.shape[0] if diverging.ndim == 2 else 1
    total = int(diverging.size)

    divergences = count_divergences(stats)
    if divergences:
        messages.append(
            f"{_percent(divergences, total)} transitions ended with a divergence. Divergent "
            "transitions mean that HMC could not follow the posterior's curvature there, so "
            "that region may be undersampled and the estimates biased. Try a higher "
            "target_accept (closer to 1); if divergences remain, reparameterize the model "
            "(e.g. noncentered hierarchical priors)."
        )

    saturated = tree_depth_saturation(stats, max_tree_depth)
    if saturated:
        messages.append(
            f"{_percent(saturated, total)} transitions hit the maximum tree depth of "
            f"{max_tree_depth} (2^{max_tree_depth} leapfrog steps). Trajectories cut short by "
            "this limit explore slowly; increase max_tree_depth, or use metric=\"dense\" if "
            "the posterior is strongly correlated."
        )

    if "energy" in stats:
        bfmi = e_bfmi(stats["energy"])
        low = [(c, b) for c, b in enumerate(bfmi) if np.isfinite(b) and b < EBFMI_THRESHOLD]
        if low:
            which = ", ".join(f"chain {c}: {b:.2f}" for c, b in low)
            messages.append(
                f"E-BFMI below {EBFMI_THRESHOLD} ({which}). The momentum resampling moves the "
                "chain too little between energy levels, so HMC may have trouble exploring "
                "the posterior (often heavy tails or a funnel). Try reparameterizing the model."
            )

    if summary and num_chains == 1:
        messages.append(
            "One chain: convergence was not assessed (R-hat compares several chains, so it "
            "is nan here). Run 4 chains (--chains 4, sample(chains=4)) to check that they "
            "agree."
        )
    if summary:
        high = [name for name, s in summary.items() if _gt(s.get("r_hat"), RHAT_THRESHOLD)]
        if high:
            messages.append(
                f"R-hat above {RHAT_THRESHOLD} for {_names(high)}: the chains have not mixed, "
                "so the estimates may be biased. Run longer, or consider stronger priors or a "
                "better parameterization."
            )
        floor = ESS_PER_CHAIN_THRESHOLD * num_chains
        few = [name for name, s in summary.items()
               if _lt(s.get("ess_bulk"), floor) or _lt(s.get("ess_tail"), floor)]
        if few:
            messages.append(
                f"Effective sample size (bulk or tail) below {ESS_PER_CHAIN_THRESHOLD} per chain "
                f"({floor} for {num_chains} chains) for {_names(few)}: the ESS and Monte Carlo "
                "error estimates themselves are unreliable. Run more draws."
            )
        heavy = heavy_tails(summary, khats or {}, total)
        if heavy:
            shown = "; ".join(f"{name} ({why})" for name, why in heavy[:10])
            more = f" and {len(heavy) - 10} more" if len(heavy) > 10 else ""
            messages.append(
                f"Heavy right tail in the draws of {shown}{more}: the sampler crosses a "
                "tail this heavy in a few long excursions that warmup, tuned to the bulk, "
                "under-explores, so its extreme quantiles and its mean (and the MCSE) are "
                "unreliable. Sample again with a smaller step size: --target-accept 0.95 "
                "(sample(target_accept=0.95) in Python); if the tail stays, a more "
                "informative prior or more data would tame it."
            )
    return messages


def _gt(x, threshold: float) -> bool:
    """x > threshold; None and NaN (R-hat and ESS of a constant element, such as the unit
    diagonal of a Cholesky factor) are not flagged."""
    return x is not None and bool(np.isfinite(x)) and x > threshold


def _lt(x, threshold: float) -> bool:
    return x is not None and bool(np.isfinite(x)) and x < threshold


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
