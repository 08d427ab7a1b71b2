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
the minibatch means of alpha match full-batch ADVI's: the posterior sd of each alpha is
about 10 / sqrt(2000) = 0.22; the bug moved them by about 2.6, and 0.35 is 1.6 posterior
sds (two ADVI fits, each within a fraction of an sd of the posterior mean).
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

    full = np.asarray(model.fit(method="advi", seed=1)["alpha"]).mean(axis=(0, 1))
    minibatch = np.asarray(model.fit(method="advi", batch_size=20, seed=1,
                                     max_iterations=20000)["alpha"]).mean(axis=(0, 1))
    np.testing.assert_allclose(minibatch, full, atol=0.35)
