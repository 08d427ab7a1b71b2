"""Simulate the drug-trial data set in data.json (fixed seed, so it is reproducible).

40 patients, half randomized to the drug, each measured at 6 weekly visits (weeks 0..5).

    python examples/drug_trial/simulate.py > examples/drug_trial/data.json
"""

import json

import numpy as np

TRUE = {"alpha": 2.0, "trend": -0.5, "effect": -4.0, "tau": 3.0, "sigma": 1.5}


def simulate(patients: int = 40, visits: int = 6, seed: int = 20260302) -> dict:
    rng = np.random.default_rng(seed)
    treated = rng.permutation(np.repeat([0, 1], patients // 2))
    u = TRUE["tau"] * rng.normal(size=patients)
    patient = np.repeat(np.arange(patients), visits)
    week = np.tile(np.arange(visits, dtype=float), patients)
    y = (TRUE["alpha"] + u[patient] + TRUE["trend"] * week + TRUE["effect"] * treated[patient]
         + TRUE["sigma"] * rng.normal(size=len(patient)))
    return {"P": patients, "N": len(patient), "patient": patient.tolist(),
            "treated": treated.tolist(), "week": week.tolist(), "y": np.round(y, 6).tolist()}


if __name__ == "__main__":
    print(json.dumps(simulate()))
