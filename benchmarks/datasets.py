"""Benchmark data sets of the sizes the suite needs, simulated with fixed seeds.

The examples/ ship small data sets (100-row regression, 1000-row logistic, T = 300); the
suite needs the sizes of PERFORMANCE.md's protocol, so each generator here writes pplc's JSON
data format to a given path and returns it. Every generator is deterministic in its seed, so
both systems, every seed of a run and every later run read the same numbers. `perturbed`
variants (new values, same shapes) serve the warm-cache start-up check: a second `pplc
sample` on new data of the same shapes must not compile again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def linreg_arrays(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = 0.5 + X beta + N(0, 1) noise, X standard normal, beta ~ N(0, 1) (fixed seed)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = rng.normal(0.0, 1.0, size=k)
    y = 0.5 + X @ beta + rng.normal(0.0, 1.0, size=n)
    return X, y


def write_linreg_data(path: Path, n: int = 1000, k: int = 10, seed: int = 0) -> Path:
    X, y = linreg_arrays(n, k, seed)
    return _write(path, {"N": n, "K": k, "X": X.round(6).tolist(), "y": y.round(6).tolist()})


def write_hier_logistic_data(path: Path, n: int = 5000, groups: int = 50, k: int = 5,
                             seed: int = 0) -> Path:
    """Binary outcomes with varying intercepts (mu_a = 0.3, sigma_a = 0.7), slopes
    ~ N(0, 0.5), balanced groups in shuffled order (fixed seed)."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % groups
    rng.shuffle(g)
    X = rng.normal(size=(n, k))
    beta = rng.normal(0.0, 0.5, size=k)
    alpha = 0.3 + 0.7 * rng.normal(size=groups)
    p = 1.0 / (1.0 + np.exp(-(alpha[g] + X @ beta)))
    y = (rng.random(n) < p).astype(int)
    return _write(path, {"N": n, "G": groups, "K": k, "g": g.tolist(),
                         "X": X.round(6).tolist(), "y": y.tolist()})


def corr_gaussian_scale_tril(dim: int = 100, seed: int = 0) -> np.ndarray:
    """Cholesky factor of Q diag(s^2) Q^T: Q a random rotation (QR of a Gaussian matrix,
    signs fixed), s log-spaced from 0.1 to 10, so the condition number of the covariance
    is 1e4 and no axis-aligned (diagonal) metric can undo the rotation."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    q = q * np.sign(np.diag(r))
    s = np.logspace(-1.0, 1.0, dim)
    cov = (q * s**2) @ q.T
    return np.linalg.cholesky((cov + cov.T) / 2)


def write_corr_gaussian_data(path: Path, dim: int = 100, seed: int = 0) -> Path:
    L = corr_gaussian_scale_tril(dim, seed)
    return _write(path, {"D": dim, "L": L.tolist()})


def write_stochastic_volatility_data(path: Path, t: int = 500, seed: int = 0) -> Path:
    """The AR(1) log-variance model of examples/stochastic_volatility (mu = -1,
    phi = 0.95, sigma = 0.25), T returns (fixed seed)."""
    rng = np.random.default_rng(seed)
    mu, phi, sigma = -1.0, 0.95, 0.25
    h = np.empty(t)
    h[0] = mu + sigma / np.sqrt(1 - phi**2) * rng.normal()
    for i in range(1, t):
        h[i] = mu + phi * (h[i - 1] - mu) + sigma * rng.normal()
    y = np.exp(h / 2) * rng.normal(size=t)
    return _write(path, {"T": t, "y": np.round(y, 6).tolist()})


def write_perturbed(source: Path, path: Path, keys: tuple[str, ...], scale: float = 0.01,
                    seed: int = 1) -> Path:
    """Copy of a JSON data file with small noise added to the real-valued arrays `keys`:
    new values, same shapes (and still inside each array's support for small `scale`)."""
    rng = np.random.default_rng(seed)
    data = json.loads(Path(source).read_text())
    for key in keys:
        values = np.asarray(data[key], dtype=float)
        noisy = values + scale * np.abs(values).mean() * rng.normal(size=values.shape)
        data[key] = np.round(noisy, 6).tolist()
    return _write(path, data)
