"""Simulate the linear-regression data set in data.json (fixed seed, so it is reproducible).

    python examples/linear_regression/simulate.py > examples/linear_regression/data.json
"""

import json

import numpy as np

TRUE = {"alpha": 1.5, "beta": [2.0, -1.0, 0.5], "sigma": 0.7}


def simulate(n: int = 100, seed: int = 20261122) -> dict:
    rng = np.random.default_rng(seed)
    k = len(TRUE["beta"])
    x = rng.normal(size=(n, k))
    y = TRUE["alpha"] + x @ np.array(TRUE["beta"]) + TRUE["sigma"] * rng.normal(size=n)
    return {"N": n, "K": k, "X": np.round(x, 6).tolist(), "y": np.round(y, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
