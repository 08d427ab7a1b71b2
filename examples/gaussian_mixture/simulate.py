"""Simulate the Gaussian-mixture data set in data.json (fixed seed, so it is reproducible).

The assignments are drawn and then thrown away: data.json holds y only.

    python examples/gaussian_mixture/simulate.py > examples/gaussian_mixture/data.json
"""

import json

import numpy as np

TRUE = {"w": [0.3, 0.4, 0.3], "mu": [-3.0, 0.5, 4.0], "sigma": 1.0}


def simulate(n: int = 200, seed: int = 20260305) -> dict:
    rng = np.random.default_rng(seed)
    z = rng.choice(len(TRUE["w"]), size=n, p=TRUE["w"])
    y = np.array(TRUE["mu"])[z] + TRUE["sigma"] * rng.normal(size=n)
    return {"N": n, "K": len(TRUE["w"]), "y": np.round(y, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
