"""Simulate the stochastic-volatility data set in data.json (fixed seed, so it is reproducible).

    python examples/stochastic_volatility/simulate.py > examples/stochastic_volatility/data.json
"""

import json

import numpy as np

TRUE = {"mu": -1.0, "phi": 0.95, "sigma": 0.25}


def simulate(t: int = 300, seed: int = 20260307) -> dict:
    rng = np.random.default_rng(seed)
    mu, phi, sigma = TRUE["mu"], TRUE["phi"], TRUE["sigma"]
    h = np.empty(t)
    h[0] = mu + sigma / np.sqrt(1 - phi ** 2) * rng.normal()
    for i in range(1, t):
        h[i] = mu + phi * (h[i - 1] - mu) + sigma * rng.normal()
    y = np.exp(h / 2) * rng.normal(size=t)
    return {"T": t, "y": np.round(y, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
