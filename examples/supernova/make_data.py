"""Turn the Union2.1 table (union2.1.tsv, copied from ../shared/data) into data.json.

    python examples/supernova/make_data.py

Suzuki et al. 2012, ApJ 746, 85 (arXiv:1105.3470): 580 Type Ia supernovae, redshift z,
distance modulus mu and its uncertainty (diagonal errors only; the full covariance with
systematics is not used here).
"""

import json
from pathlib import Path

HERE = Path(__file__).parent


def read_table(path=HERE / "union2.1.tsv") -> dict:
    z, mu, err = [], [], []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _name, zi, mui, erri, _host = line.split("\t")
        z.append(float(zi))
        mu.append(float(mui))
        err.append(float(erri))
    return {"N": len(z), "z": z, "mu": mu, "mu_err": err}


if __name__ == "__main__":
    (HERE / "data.json").write_text(json.dumps(read_table()) + "\n")
