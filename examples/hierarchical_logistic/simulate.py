"""Simulate the hierarchical logistic-regression data set in data.json (fixed seed).

1000 rows in 20 groups of 50, 3 standard-normal covariates.

    python examples/hierarchical_logistic/simulate.py > examples/hierarchical_logistic/data.json
"""

import json

import numpy as np

TRUE = {"mu_a": -0.5, "sigma_a": 0.8, "beta": [1.0, -0.7, 0.3]}


def simulate(n: int = 1000, groups: int = 20, seed: int = 20260306) -> dict:
    rng = np.random.default_rng(seed)
    k = len(TRUE["beta"])
    a = TRUE["mu_a"] + TRUE["sigma_a"] * rng.normal(size=groups)
    g = np.repeat(np.arange(groups), n // groups)
    x = np.round(rng.normal(size=(n, k)), 6)
    logits = a[g] + x @ np.array(TRUE["beta"])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(int)
    return {"N": n, "G": groups, "K": k, "g": g.tolist(), "X": x.tolist(), "y": y.tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
