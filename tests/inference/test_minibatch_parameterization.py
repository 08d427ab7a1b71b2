"""Minibatch ADVI when the batch's model is parameterized otherwise than the whole data's.

The reparameterization pass chooses centered or noncentered forms from how many
observations inform each element (passes/reparameterize.py): on B rows it can choose the
noncentered `alpha_std` where, on N rows, the model keeps `alpha` centered. The fit runs
on the batch's model; its draws must be read in that model's parameterization and carried
to the whole data's. Before the fix they were read as if the spaces were one: `alpha_std`
taken for `alpha`, every group mean off by about the population mean (a silent wrong answer).

Data: 10 groups of about 2000 rows, observation sd 10, group means of sd 2 around 3: on the
whole data r = n (prior scale / observation scale)^2 is large (centered), on 20 rows it is
about 0.2 (noncentered). The test checks the premise (the two layouts differ), then that
the minibatch means of alpha match the posterior means. The oracle is closed form, not a
second fit: with ~2000 rows a group, alpha[j]'s posterior mean is the group's mean of y
shrunk toward the grand mean by b_j = (sigma^2 / n_j) / (sigma^2 / n_j + tau^2), about
1.2% (at most 0.04 here); `_posterior_means` takes tau from the spread of the group
means (empirical Bayes: tau^2 from 10 group means errs by ~50%, which moves that shrinkage
by under 0.02). The posterior sd of each alpha is about 10 / sqrt(2000) = 0.22; the bug
moved the means by about 2.6 (4.1 at most, with the draws' mapping taken out), and 0.35 is
1.6 posterior sds. Measured against the oracle: the full-batch ADVI fit that was the
reference before (one more compiled program, issue 16 item 7) within 0.024, the minibatch
fit within 0.070 (seed 1, the test's) and 0.048 (seed 2).
"""

import numpy as np

import pplc
from pplc.inference.minibatch import head_data, plan_minibatch

MODEL = """
data N: int
data G: int
data g: int[N]
data y: real[N]
mu ~ Normal(0, 5)
tau ~ HalfNormal(5)
for j in range(G):
    alpha[j] ~ Normal(mu, tau)
sigma ~ HalfNormal(20)
for n in range(N):
    y[n] ~ Normal(alpha[g[n]], sigma)
"""


def test_draws_from_a_batch_model_parameterized_otherwise_are_read_in_its_own_space():
    rng = np.random.default_rng(0)
    n, groups = 20000, 10
    g = rng.integers(0, groups, n)
    alpha = rng.normal(3, 2, groups)
    data = {"N": n, "G": groups, "g": g, "y": alpha[g] + rng.normal(0, 10, n)}
    model = pplc.compile(MODEL).condition(data)

    plan = plan_minibatch(model.lowered, 20)
    batch = model.model.condition(head_data(plan, data))
    names = lambda m: [block.name for block in m.lowered.layout]  # noqa: E731
    assert names(model) != names(batch), "premise: the batch's model is noncentered"

    minibatch = np.asarray(model.fit(method="advi", batch_size=20, seed=1,
                                     max_iterations=20000)["alpha"]).mean(axis=(0, 1))
    np.testing.assert_allclose(minibatch, _posterior_means(data), atol=0.35)


def _posterior_means(data):
    """alpha's posterior means in closed form: each group's mean of y shrunk toward the
    grand mean by (sigma^2 / n_j) / (sigma^2 / n_j + tau^2), sigma the simulation's 10 and
    tau^2 the group means' variance less their noise (empirical Bayes)."""
    g, y = np.asarray(data["g"]), np.asarray(data["y"])
    counts = np.bincount(g, minlength=data["G"])
    means = np.bincount(g, weights=y, minlength=data["G"]) / counts
    noise = 10.0 ** 2 / counts
    tau2 = max(means.var(ddof=1) - noise.mean(), 1e-6)
    pooled = np.sum(means / (noise + tau2)) / np.sum(1 / (noise + tau2))
    return means - noise / (noise + tau2) * (means - pooled)
