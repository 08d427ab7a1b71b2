"""Rank-normalized split R-hat and effective sample sizes (Vehtari et al. 2021), in NumPy.

Why our own: these are the numbers every summary prints, and ArviZ (with xarray, pandas
and SciPy under it) takes seconds to import: a `pplc sample` of a small model spent more
time waiting for that import than sampling. The definitions are ArviZ's, term for term,
so the figures agree with `arviz.rhat`/`arviz.ess` to rounding (tests/inference/
test_convergence.py compares them on random and awkward inputs):

* split chains: each chain's first and last halves (the middle draw of an odd count is
  dropped) are chains of their own;
* rank normalization: the pooled ranks (ties averaged), r -> Phi^-1((r - 3/8) / (S + 1/4))
  with S the number of draws (Blom's offset);
* R-hat: the larger of the split R-hats of the rank-normalized draws and of the
  rank-normalized distances from the median (the folded draws);
* ESS: Geyer's initial positive then initial monotone sequence over the autocorrelations
  averaged across chains, `tau >= 1 / log10(S)`;
* bulk ESS: of the rank-normalized split draws; tail ESS: the smaller of the ESS of the
  indicators `draw <= q` for the 5% and 95% quantiles; mean ESS: of the split draws as they
  are (what the Monte Carlo standard error of the mean needs).

A NaN among the draws gives NaN; a constant sequence has ESS = its number of draws.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rhat", "ess_bulk", "ess_tail", "ess_mean", "ndtri"]

_MIN_DRAWS = 4


def rhat(draws: np.ndarray) -> float:
    """Rank-normalized split R-hat of one quantity's draws, shaped (chain, draw)."""
    draws = np.asarray(draws, dtype=float)
    if np.isnan(draws).any() or draws.shape[0] < 2 or draws.shape[1] < _MIN_DRAWS:
        return float("nan")
    split = _split_chains(draws)
    bulk = _rhat(_z_scale(split))
    tail = _rhat(_z_scale(np.abs(split - np.median(split))))
    return float(max(bulk, tail))


def ess_bulk(draws: np.ndarray) -> float:
    """Bulk effective sample size: the ESS of the rank-normalized split chains."""
    draws = np.asarray(draws, dtype=float)
    if _invalid(draws):
        return float("nan")
    return _ess(_z_scale(_split_chains(draws)))


def ess_tail(draws: np.ndarray, probs: tuple[float, float] = (0.05, 0.95)) -> float:
    """Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators."""
    draws = np.asarray(draws, dtype=float)
    if _invalid(draws):
        return float("nan")
    return min(_ess(_split_chains((draws <= np.quantile(draws, p)).astype(float)))
               for p in probs)


def ess_mean(draws: np.ndarray) -> float:
    """Effective sample size of the mean: of the split chains, not rank-normalized."""
    draws = np.asarray(draws, dtype=float)
    if _invalid(draws):
        return float("nan")
    return _ess(_split_chains(draws))


def _invalid(draws: np.ndarray) -> bool:
    return bool(np.isnan(draws).any()) or draws.ndim != 2 or draws.shape[1] < _MIN_DRAWS


def _split_chains(draws: np.ndarray) -> np.ndarray:
    half = draws.shape[1] // 2
    return np.vstack((draws[:, :half], draws[:, -half:]))


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (ties get their average rank)."""
    flat = x.ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.size)
    sorted_values = flat[order]
    # Average rank over each run of equal values: runs start where the value changes.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], flat.size]
    average = (starts + ends + 1) / 2.0   # ranks are 1-based: mean of starts+1 .. ends
    ranks[order] = np.repeat(average, ends - starts)
    c = 3.0 / 8.0
    return ndtri((ranks - c) / (flat.size - 2 * c + 1)).reshape(x.shape)


def _rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariances at every lag, per chain (rows), by FFT with zero padding to 2n."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=2 * n, axis=1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=2 * n, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """Geyer's initial monotone sequence estimator over chains, as Stan and ArviZ."""
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    chains, n = x.shape
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    mean_acov = acov.mean(axis=0)
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - mean_acov[t + 1]) / var_plus
        rho_odd = 1.0 - (mean_var - mean_acov[t + 2]) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:   # initial monotone sequence
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = chains * n
    tau = -1.0 + 2.0 * np.sum(rho[:max_t + 1]) + np.sum(rho[max_t + 1:max_t + 2])
    tau = max(tau, 1.0 / np.log10(total))
    return float("nan") if np.isnan(rho).any() else float(total / tau)


# Wichura's algorithm AS 241 (PPND16): the standard normal quantile to about 1e-16.
_A = (3.387132872796366608, 133.14166789178437745, 1971.5909503065514427,
      13731.693765509461125, 45921.953931549871457, 67265.770927008700853,
      33430.575583588128105, 2509.0809287301226727)
_B = (1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
      21213.794301586595867, 39307.89580009271061, 28729.085735721942674,
      5226.495278852545925)
_C = (1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055,
      3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177,
      0.0227238449892691845833, 7.7454501427834140764e-4)
_D = (1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
      0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4,
      1.05075007164441684324e-9)
_E = (6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358,
      0.29656057182850489123, 0.026532189526576123093, 0.0012426609473880784386,
      2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
      7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7,
      2.04426310338993978564e-15)


def _poly(coefficients: tuple, x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for c in reversed(coefficients):
        out = out * x + c
    return out


def ndtri(p: np.ndarray) -> np.ndarray:
    """Phi^-1(p) for p in (0, 1), elementwise (AS 241; relative error about 1e-16)."""
    p = np.asarray(p, dtype=float)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    r = 0.180625 - q[central] ** 2
    out[central] = q[central] * _poly(_A, r) / _poly(_B, r)
    tail = ~central
    r = np.sqrt(-np.log(np.minimum(p[tail], 1.0 - p[tail])))
    near = r <= 5.0
    value = np.where(near, _poly(_C, r - 1.6) / _poly(_D, r - 1.6),
                     _poly(_E, r - 5.0) / _poly(_F, r - 5.0))
    out[tail] = np.where(q[tail] < 0, -value, value)
    return out
