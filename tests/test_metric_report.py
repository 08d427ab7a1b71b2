"""What `pplc sample`'s header says of a low-rank metric: what each chain kept.

Why: a low-rank metric (what `--metric auto` runs from 2 to 100 parameters) keeps only the
eigen-directions whose variance departs from the Fisher diagonal's by more than a cutoff of
2, chain by chain, so a "low-rank" run is often the Fisher diagonal; the header said
"metric low-rank (auto)" either way. The count comes from the warmup itself
(`AdaptationState.directions`, `attrs["metric_directions"]`).

On a Gaussian target the Fisher-optimal estimate is exact whatever the draws (the gradient
is -P (x - mu), so the draws' and the gradients' covariances fix the covariance), which makes
both cases below deterministic, not statistical. x, y ~ N(0, 1) and z ~ N(x + y, noise)
observed: the posterior precision is P = I + [[1, 1], [1, 1]] / noise^2 (a correlation the
reparameterization cannot take away: it comes from the data).
  * noise = 1000: P = I to 1e-6; every scaled direction is 1 up to Stan's shrinkage
    (n + 5) / n <= 1.5 < 2, so no direction is kept.
  * noise = 0.1: P = [[101, 100], [100, 101]], the covariance's eigenvalues 1 and 1/201
    (corr(x, y) = -0.99); the Fisher diagonal sqrt(var x / var g) = sqrt(0.5025 / 101) =
    0.0705, so the scaled covariance's eigenvalues are 14.2 and 0.071, both outside
    [1/2, 2]: two directions kept.
"""

import pytest

from pplc.inference.report import metric_phrase

MODEL = """\
data z: real
data noise: positive
x ~ Normal(0, 1)
y ~ Normal(0, 1)
z ~ Normal(x + y, noise)
"""


@pytest.mark.parametrize("attrs, phrase", [
    ({"metric_requested": "auto", "metric": "low-rank", "metric_directions": [0, 0]},
     "metric auto: diagonal (no direction kept)"),
    ({"metric_requested": "auto", "metric": "low-rank", "metric_directions": [1, 1, 1, 1]},
     "metric auto: low-rank, 1 direction kept"),
    ({"metric_requested": "low-rank", "metric": "low-rank", "metric_directions": [3]},
     "metric low-rank: low-rank, 3 directions kept"),
    ({"metric_requested": "auto", "metric": "low-rank", "metric_directions": [0, 1, 1, 2]},
     "metric auto: low-rank on 3 of 4 chains (directions kept per chain: 0, 1, 1, 2)"),
    ({"metric_requested": "auto", "metric": "low-rank", "metric_directions": [0] * 9 + [4]},
     "metric auto: low-rank on 1 of 10 chains (directions kept per chain: 0 to 4)"),
    ({"metric_requested": "auto", "metric": "diag"}, "metric diag (auto)"),
    ({"metric_requested": "dense", "metric": "dense"}, ""),
])
def test_the_header_phrase_says_what_each_chain_kept(attrs, phrase):
    assert metric_phrase(attrs) == phrase


def test_pplc_sample_says_whether_the_low_rank_metric_kept_a_direction(tmp_path, capsys):
    from pplc.cli import main

    model = tmp_path / "gauss.ppl"
    model.write_text(MODEL)
    for noise, said in ((1000.0, "2 chains x 20 draws, metric auto: diagonal (no direction kept)"),
                        (0.1, "2 chains x 20 draws, metric auto: low-rank, 2 directions kept")):
        data = tmp_path / f"noise_{noise}.json"
        data.write_text(f'{{"z": 1.0, "noise": {noise}}}')
        status = main(["sample", str(model), "--data", str(data), "--chains", "2",
                       "--warmup", "100", "--draws", "20", "--quiet",
                       "--chain-method", "sequential"])
        out = capsys.readouterr().out
        assert status == 0, out
        assert said in out, (noise, out)


def test_the_warmup_counts_the_directions_in_the_dense_and_the_packed_form(monkeypatch):
    # The same posterior at noise = 0.1 plus an independent w ~ N(0, 2^2) (its scaled
    # direction stays at 1): the dense form keeps the pair's two directions; the packed
    # O(dim * rank) kernel (MAX_RANK lowered to 1 < 3 / 2, as for a model above 100
    # parameters) keeps only the one farthest from 1.
    import jax
    import numpy as np

    from pplc.inference import metric, sample_nuts

    def logdensity(u, data):
        x, y, w = u
        return -0.5 * (x ** 2 + y ** 2 + ((data["z"] - x - y) / data["noise"]) ** 2 + (w / 2) ** 2)

    def kept():
        result = sample_nuts(logdensity, {"z": np.float64(1.0), "noise": np.float64(0.1)},
                             np.zeros((2, 3)), jax.random.key(0), num_warmup=100,
                             num_samples=10, chain_method="sequential", metric="low-rank")
        return result.directions_kept.tolist()

    assert kept() == [2, 2]
    monkeypatch.setattr(metric, "MAX_RANK", 1)
    assert kept() == [1, 1]
