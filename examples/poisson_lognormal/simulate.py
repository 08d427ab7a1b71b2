"""Simulate the Poisson-lognormal data set in data.json (fixed seed, so it is reproducible).

    python examples/poisson_lognormal/simulate.py > examples/poisson_lognormal/data.json
"""

import json

import numpy as np

TRUE = {"A": 1.0, "B": 0.5}


def simulate(n: int = 20, seed: int = 20260306) -> dict:
    rng = np.random.default_rng(seed)
    c = np.exp(TRUE["A"] + TRUE["B"] * rng.normal(size=n))
    return {"N": n, "X": rng.poisson(c).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
