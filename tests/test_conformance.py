"""NUTS reproduces every posterior of the conformance set (posteriordb references).

One test per folder of ../shared/conformance (its README describes the layout): pplc
compiles the hand translation `model.ppl`, samples it, and every parameter element of
`reference.json` must match Stan's long reference run: the mean within 0.15 reference sd
and the sd within 15%.

Why the run lengths make these bounds reliable. The error of a pplc estimate is its Monte
Carlo standard error (MCSE); the reference's own MCSE is about 0.01 sd (ESS ~10,000), which
adds under 3% to ours in quadrature, so we neglect it. For the mean, MCSE = sd / sqrt(ESS):
ESS >= 400 gives MCSE <= 0.05 sd, so 0.15 sd is >= 3 MCSE (a two-sided normal tail of
0.27%). For the sd, the MCSE of a sample sd is sd * sqrt((kurtosis - 1) / (4 ESS)): for
Gaussian draws (kurtosis 3) ESS >= 200 gives <= 5%, so 15% is >= 3 MCSE; eight schools'
tau, with its heavy right tail (kurtosis ~ 9 by ArviZ's MCSE), needs ESS ~ 800. Rather than
trust these rules of thumb, every test checks them: ArviZ's MCSE of the mean and of the sd
(which estimates the kurtosis from the draws) must be below 0.05 reference sd for every
element, so a pass always means ">= 3 MCSE" and a run that is too short fails as such
instead of passing by luck. The draws per chain below were chosen from measured ESS per
draw so that the largest MCSE is about 0.03-0.04 sd (>= 4 MCSE, a tail of 6e-5 per check).
Seeds are fixed, so results are reproducible.

Run settings: 4 chains, 1000 warmup iterations (Stan's default); target_accept is Stan's
default 0.8, raised to the reference run's own adapt_delta for the models where 0.8 leaves
divergences (eight schools: 0.95; the GP: 0.99). Each test asserts 0 divergences: the
references have none, and neither does pplc at these settings, eight schools centered
included, because pplc's reparameterization pass noncenters its theta automatically (the
test checks the pass's decision too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pytest

import pplc

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CONFORMANCE.is_dir(),
                       reason=f"{CONFORMANCE} is absent: the conformance references live in "
                              "../shared/conformance next to this repository"),
]

MEAN_TOLERANCE = 0.15  # |mean - ref mean| / ref sd
SD_TOLERANCE = 0.15    # |sd / ref sd - 1|
MAX_MCSE = MEAN_TOLERANCE / 3  # each tolerance must be >= 3 MCSE (in reference sds)


@dataclass(frozen=True)
class Run:
    """How one posterior is sampled (4 chains, 1000 warmup iterations, seed 0)."""

    draws: int  # per chain: enough for MCSE < ~0.04 reference sd at the measured ESS per draw
    metric: str = "diag"
    target_accept: float = 0.8
    init: str = "uniform"


RUNS = {
    "arK-arK": Run(draws=400),
    # tau's sd needs ESS ~ 800 (heavy tail); 0.8 leaves 2 divergences, the reference used 0.95.
    "eight_schools-eight_schools_centered": Run(draws=1000, target_accept=0.95),
    "eight_schools-eight_schools_noncentered": Run(draws=1000, target_accept=0.95),
    "garch-garch11": Run(draws=600),
    # 0.8 leaves ~10 divergences in the near-singular GP (0.95: 1); the reference used 0.99.
    "gp_pois_regr-gp_pois_regr": Run(draws=600, target_accept=0.99),
    "hudson_lynx_hare-lotka_volterra": Run(draws=600),
    # Correlation 0.99 between coefficients: dense metric. The Uniform(-1000, 1000) boxes
    # (caveat C1) start a coefficient near +-760 from Stan's uniform(-2, 2) initialization,
    # and 1000 warmup iterations do not always bring every chain in: measured with the
    # dense metric over seeds 0-3, 4 of 16 pplc chains were still in transit (R-hat ~2);
    # NumPyro, same model, init and warmup: 1 of 12. Pathfinder starts them in the bulk.
    "kidiq-kidscore_interaction": Run(draws=400, metric="dense", init="pathfinder"),
    # A chain started by Stan's uniform(-2, 2) rule can settle in a local mode (both
    # components on one cluster: R-hat ~1.5, ESS ~7): seeds 5 of 4-7 before this session's
    # changes, 4 and 5 of 0-5 after; and at 250 draws R-hat's own noise reached 1.0105 and
    # 1.0115 on seeds that mixed. Pathfinder starts the chains in the bulk: 1000 draws, seeds
    # 0-7, R-hat 1.0008-1.0027, ESS 3170-4091.
    "low_dim_gauss_mix-low_dim_gauss_mix": Run(draws=1000, init="pathfinder"),
    # sigma mixes slowly: ESS ~0.18 per draw with either metric.
    "sblrc-blr": Run(draws=1000),
}


def _element_draws(posterior, element: str) -> np.ndarray:
    """(chain, draw) array of one element named like reference.json: 'tau', 'theta[3]'."""
    match = re.fullmatch(r"(\w+)(?:\[([\d,]+)\])?", element)
    name, index = match.group(1), match.group(2)
    draws = posterior[name]
    if index is None:
        return draws
    return draws[(Ellipsis, *(int(i) for i in index.split(",")))]


@dataclass
class Comparison:
    """Per element, in reference sds: mean error, relative sd error and the two MCSEs."""

    mean_error: dict[str, float]
    sd_error: dict[str, float]
    mcse_mean: dict[str, float]
    mcse_sd: dict[str, float]
    r_hat: dict[str, float]

    def worst(self, which: str) -> tuple[str, float]:
        values = getattr(self, which)
        name = max(values, key=lambda k: abs(values[k]))
        return name, values[name]


def _mcse(draws: np.ndarray, method: str) -> float:
    """ArviZ's MCSE of one element's (chain, draw) array, on ArviZ's NumPy path: with numba
    installed (`make bench` adds it to the same virtualenv) ArviZ 0.23 returns a 1-element
    array here, and its method="sd" raises inside ArviZ under NumPy 2.4."""
    numba = az.utils.Numba
    was_on = numba.numba_flag
    numba.disable_numba()
    try:
        return float(np.asarray(az.mcse(draws, method=method)).squeeze())
    finally:
        if was_on:
            numba.enable_numba()


def compare(posterior, reference: dict) -> Comparison:
    summary = posterior.summary()
    out = Comparison({}, {}, {}, {}, {})
    for element, ref in reference.items():
        draws = _element_draws(posterior, element)
        got = summary[element]
        out.mean_error[element] = (got["mean"] - ref["mean"]) / ref["sd"]
        out.sd_error[element] = got["sd"] / ref["sd"] - 1
        out.mcse_mean[element] = _mcse(draws, "mean") / ref["sd"]
        out.mcse_sd[element] = _mcse(draws, "sd") / ref["sd"]
        out.r_hat[element] = got["r_hat"]
    return out


def sample_conformance(folder_name: str):
    """Sample one conformance posterior with its settings in RUNS; returns (model, posterior)."""
    folder = CONFORMANCE / folder_name
    run = RUNS[folder_name]
    model = pplc.compile(folder / "model.ppl").condition(folder / "data.json")
    posterior = model.sample(chains=4, warmup=1000, draws=run.draws, seed=0,
                             metric=run.metric, target_accept=run.target_accept,
                             init=run.init)
    return model, posterior


def reference_parameters(folder_name: str) -> dict:
    return json.loads((CONFORMANCE / folder_name / "reference.json").read_text())["parameters"]


def _assert_reproduces(folder_name: str, posterior) -> None:
    c = compare(posterior, reference_parameters(folder_name))
    for element in c.mean_error:
        # The run is long enough for the bounds to mean something (see the module docstring).
        assert c.mcse_mean[element] < MAX_MCSE, (element, "MCSE of the mean", c.mcse_mean[element])
        assert c.mcse_sd[element] < MAX_MCSE, (element, "MCSE of the sd", c.mcse_sd[element])
        assert c.r_hat[element] < 1.01, (element, "R-hat", c.r_hat[element])
    bad_means = {k: round(v, 3) for k, v in c.mean_error.items() if abs(v) >= MEAN_TOLERANCE}
    bad_sds = {k: round(v, 3) for k, v in c.sd_error.items() if abs(v) >= SD_TOLERANCE}
    assert not bad_means, f"means off by these many reference sds: {bad_means}"
    assert not bad_sds, f"sds off by these relative amounts: {bad_sds}"
    assert posterior.divergences == 0


def test_every_folder_has_a_run():
    """A posterior added to ../shared/conformance must get a test here."""
    folders = {p.name for p in CONFORMANCE.iterdir() if (p / "reference.json").exists()}
    assert folders == set(RUNS)


@pytest.mark.parametrize("folder_name", sorted(RUNS))
def test_reproduces_reference_posterior(folder_name):
    model, posterior = sample_conformance(folder_name)
    if folder_name == "eight_schools-eight_schools_centered":
        # The model is written centered; the pass is what removes the funnel.
        notes = [n.message for n in model.graph.notes if n.pass_name == "reparameterize"]
        assert any(m.startswith("theta: noncentered") for m in notes), notes
    _assert_reproduces(folder_name, posterior)
