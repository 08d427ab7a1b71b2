"""Simulate the damped-oscillator data set in data.json (fixed seed, so it is reproducible).

The positions come from the closed-form solution of x'' + 2 zeta w x' + w^2 x = 0 with
x(0) = 1, x'(0) = 0 (underdamped, zeta < 1), not from an ODE solver, so the fit checks
pplc's `ode` against an independent answer.

    python examples/damped_oscillator/simulate.py > examples/damped_oscillator/data.json
"""

import json

import numpy as np

TRUE = {"zeta": 0.15, "w": 2.0, "sigma": 0.05}


def position(t, zeta, w):
    """x(t) for x(0) = 1, x'(0) = 0 and 0 < zeta < 1."""
    wd = w * np.sqrt(1 - zeta ** 2)
    return np.exp(-zeta * w * t) * (np.cos(wd * t) + zeta * w / wd * np.sin(wd * t))


def simulate(n: int = 40, seed: int = 20260301) -> dict:
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.25, 10.0, n)
    x = position(ts, TRUE["zeta"], TRUE["w"]) + TRUE["sigma"] * rng.normal(size=n)
    return {"T": n, "ts": np.round(ts, 6).tolist(), "x": np.round(x, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
