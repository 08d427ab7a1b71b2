"""Build the linear-inverse-problem data set in data.json (fixed seed, so it is reproducible).

The true signal is a fixed smooth curve on a grid of D = 12 points; it is blurred by a
Gaussian kernel (width 1 grid step) onto N = 16 measurement positions, and noise of sd 0.1
is added. The prior is a zero-mean Gaussian with an exponential covariance (length 3).

    python examples/linear_inverse_problem/simulate.py > examples/linear_inverse_problem/data.json
"""

import json

import numpy as np

D, N, SIGMA, WIDTH, LENGTH = 12, 16, 0.1, 1.0, 3.0
GRID = np.arange(D, dtype=float)
TRUE = {"x": np.round(np.sin(2 * np.pi * GRID / D) + 0.5 * np.exp(-0.5 * (GRID - 8) ** 2),
                      6).tolist()}


def operator() -> np.ndarray:
    s = np.linspace(0, D - 1, N)
    a = np.exp(-0.5 * ((s[:, None] - GRID[None, :]) / WIDTH) ** 2)
    return a / a.sum(axis=1, keepdims=True)


def simulate(seed: int = 20260308) -> dict:
    rng = np.random.default_rng(seed)
    a = np.round(operator(), 8)
    s0 = np.exp(-np.abs(GRID[:, None] - GRID[None, :]) / LENGTH)
    y = a @ np.array(TRUE["x"]) + SIGMA * rng.normal(size=N)
    return {"D": D, "N": N, "A": a.tolist(), "m0": [0.0] * D, "S0": np.round(s0, 12).tolist(),
            "sigma": SIGMA, "y": np.round(y, 6).tolist()}


def closed_form(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior mean and covariance of x given data.json's contents."""
    a, s0, m0 = (np.asarray(data[k], dtype=float) for k in ("A", "S0", "m0"))
    y, sigma = np.asarray(data["y"], dtype=float), float(data["sigma"])
    prior_precision = np.linalg.inv(s0)
    cov = np.linalg.inv(a.T @ a / sigma ** 2 + prior_precision)
    mean = cov @ (a.T @ y / sigma ** 2 + prior_precision @ m0)
    return mean, cov


if __name__ == "__main__":
    print(json.dumps(simulate()))
