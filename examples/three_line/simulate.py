"""Simulate the three-line model's data set in data.json (fixed seed, so it is reproducible).

    python examples/three_line/simulate.py > examples/three_line/data.json
"""

import json

import numpy as np

TRUE = {"mu": 3.0, "sigma": 2.0}


def simulate(n: int = 50, seed: int = 20260303) -> dict:
    rng = np.random.default_rng(seed)
    x = TRUE["mu"] + TRUE["sigma"] * rng.normal(size=n)
    return {"N": n, "x": np.round(x, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
