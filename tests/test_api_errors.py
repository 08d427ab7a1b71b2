"""The Python API refuses every user mistake with `pplc.PplcError` (issue 15, item 5).

Each public entry point of `pplc.compile`, `Model`, `ConditionedModel` and `Posterior` is
called with bad arguments; none may escape as a raw IndexError, KeyError, TypeError,
AttributeError or JAX error. The options are checked by the one table the CLI reads
(`pplc.options`), so `sample(chains=0)` and `pplc sample --chains 0` say the same thing.
A bug in pplc is an `InternalError` that asks to be reported.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import pplc
from pplc.errors import InternalError, PplcError  # also pplc.InternalError, pplc.PplcError
from pplc.options import OPTIONS, OptionError, check_value, parse_text

SOURCE = """
data N: int
data y: real[N]
mu ~ Normal(0, 1)
sigma ~ HalfNormal(1)
w: simplex[3] ~ Dirichlet([1.0, 1.0, 1.0])
y ~ Normal(mu, sigma)
"""


@pytest.fixture(scope="module")
def model():
    return pplc.compile(SOURCE)


@pytest.fixture(scope="module")
def conditioned(model):
    return model.condition({"N": 3, "y": [0.1, 0.2, 0.3]})


@pytest.fixture(scope="module")
def fit(conditioned):
    return conditioned.fit("laplace", draws=20)


GOOD = {"mu": 0.1, "sigma": 1.0, "w": [0.2, 0.3, 0.5]}

BAD_SAMPLE_OPTIONS = [
    (dict(chains=0), "chains: expected a number >= 1, got 0"),
    (dict(chains=True), "chains: expected a whole number, got True"),
    (dict(draws=-5), "draws: expected a number >= 1, got -5"),
    (dict(draws=2.5), "draws: expected a whole number, got 2.5"),
    (dict(warmup=-1), "warmup: expected a number >= 0, got -1"),
    (dict(seed=-1), "seed: expected a number >= 0"),
    (dict(seed=2 ** 70), "seed: expected a number <= 9223372036854775807"),
    (dict(seed="0"), "seed: expected a whole number, got '0'"),
    (dict(target_accept=1.5), "target_accept: expected a number strictly between 0 and 1"),
    (dict(max_tree_depth=0), "max_tree_depth: expected a number >= 1, got 0"),
    (dict(max_tree_depth=100), "max_tree_depth: expected a number <= 30"),
    (dict(metric="full"), "metric: expected one of diag, dense"),   # and any others
    (dict(chain_method="threads"), "chain_method: expected one of auto"),
    (dict(init="pathfindr"), "unknown init 'pathfindr'"),
    (dict(init=3), "unknown init 3"),
]


@pytest.mark.parametrize("options, message", BAD_SAMPLE_OPTIONS)
def test_sample_refuses_bad_options_before_any_work(conditioned, options, message):
    kwargs = {"chains": 1, "warmup": 5, "draws": 5, **options}
    with pytest.raises(PplcError, match=_literal(message)):
        conditioned.sample(**kwargs)


@pytest.mark.parametrize("options, message", [
    (dict(method="nuts"), "method: expected one of advi, fullrank, map, laplace, pathfinder"),
    (dict(draws=0), "draws: expected a number >= 1, got 0"),
    (dict(method="laplace", draws=-1), "draws: expected a number >= 1, got -1"),
    (dict(method="map", max_iterations=0), "max_iterations: expected a number >= 1, got 0"),
    (dict(seed=1.5), "seed: expected a whole number, got 1.5"),
])
def test_fit_refuses_bad_options(conditioned, options, message):
    with pytest.raises(PplcError, match=_literal(message)):
        conditioned.fit(**options)


@pytest.mark.parametrize("call", ["prior_predictive", "sample_prior"])
@pytest.mark.parametrize("options, message", [
    (dict(draws=0), "draws: expected a number >= 1, got 0"),
    (dict(draws=-1), "draws: expected a number >= 1, got -1"),
    (dict(seed=-3), "seed: expected a number >= 0, got -3"),
])
def test_prior_draws_refuse_bad_options(conditioned, call, options, message):
    with pytest.raises(PplcError, match=_literal(message)):
        getattr(conditioned, call)(**options)


def test_the_cli_and_the_api_read_one_table():
    """The argparse types are made from pplc.options: same words for the same mistake."""
    from pplc.cli import build_parser

    for text, name, message in [("0", "chains", "expected a number >= 1, got 0"),
                                ("2.5", "draws", "expected a whole number, got '2.5'"),
                                ("1e3", "draws", None), ("-1", "warmup", "expected a number "
                                                          ">= 0, got -1")]:
        if message is None:
            assert parse_text(name, text) == 1000
            continue
        with pytest.raises(OptionError, match=_literal(message)):
            parse_text(name, text)
    sample = build_parser()._subparsers._group_actions[0].choices["sample"]
    by_dest = {action.dest: action for action in sample._actions}
    for name in ("chains", "warmup", "draws", "seed", "max_tree_depth", "target_accept"):
        assert by_dest[name].type.__name__ == name       # options.argparse_type(name)
    for name in ("metric", "chain_method"):
        assert tuple(by_dest[name].choices) == OPTIONS[name].choices
    assert check_value("draws", 1e3) == 1000 and check_value("chains", np.int64(2)) == 2


@pytest.mark.parametrize("bad", [[1, 2], 5, None])
def test_condition_takes_a_dict_or_a_path(model, bad):
    with pytest.raises(PplcError, match="condition takes the data as a dict"):
        model.condition(bad)


def test_compile_refuses_what_is_not_a_model():
    with pytest.raises(PplcError, match="compile takes a model's source text"):
        pplc.compile(5)
    with pytest.raises(PplcError, match="externs must be a dict"):
        pplc.compile(SOURCE, externs=[print])
    with pytest.raises(PplcError, match="cannot read model file"):
        pplc.compile("/no/such/model.ppl")


@pytest.mark.parametrize("params, message", [
    ({"mu": 0.0, "w": [0.2, 0.3, 0.5]}, "needs a value of every latent: 'sigma' (shape ())"),
    ({**GOOD, "sigam": 1.0}, "the model has no variable 'sigam'"),
    ({**GOOD, "mu": [0.0, 1.0]}, "'mu' has shape () in the model, but the value given has "
                                 "shape (2,)"),
    ({**GOOD, "w": [0.5, 0.5]}, "'w' has shape (3,) in the model"),
    ({**GOOD, "mu": "a"}, "the value of 'mu' is not made of numbers"),
    ([0.0, 1.0], "takes a dict of latent name -> value, not list"),
])
@pytest.mark.parametrize("call", ["log_density", "unconstrain"])
def test_params_are_checked_by_name_and_shape(conditioned, call, params, message):
    with pytest.raises(PplcError, match=_literal(message)):
        getattr(conditioned, call)(params)


def test_log_density_is_minus_infinity_outside_the_support(conditioned):
    inside = float(conditioned.log_density(GOOD))
    assert math.isfinite(inside)
    assert float(conditioned.log_density({**GOOD, "sigma": -1.0})) == -math.inf
    # A simplex that does not sum to one is outside too: not the density at another point.
    assert float(conditioned.log_density({**GOOD, "w": [0.2, 0.3, 0.6]})) == -math.inf
    assert float(conditioned.log_density({**GOOD, "w": [-0.2, 0.7, 0.5]})) == -math.inf
    assert math.isnan(float(conditioned.log_density({**GOOD, "mu": np.nan})))   # nan stays
    # A deterministic's value in a draw's dict is let through, and changes nothing.
    assert float(conditioned.log_density({**GOOD, "y": [0.0, 0.0, 0.0]})) == inside


@pytest.mark.parametrize("call", ["unconstrained_log_density", "constrain", "value_and_grad"])
def test_flat_vectors_must_have_the_models_dimension(conditioned, call):
    with pytest.raises(PplcError, match=f"flat vector of the {conditioned.dim} unconstrained"):
        getattr(conditioned, call)(np.zeros(conditioned.dim + 3))


@pytest.mark.parametrize("call", ["posterior_predictive", "predictive", "predictions"])
@pytest.mark.parametrize("bad", [{"mu": 1}, None, "fit.nc"])
def test_fits_must_be_posteriors(conditioned, call, bad):
    with pytest.raises(PplcError, match=f"{call} takes a Posterior"):
        getattr(conditioned, call)(bad)


def test_posterior_entry_points(fit, tmp_path):
    with pytest.raises(PplcError, match="unknown variable 'zz'"):
        fit.summary(var_names=["zz"])
    with pytest.raises(PplcError, match="var_names takes a name or a list of names"):
        fit.summary(var_names=5)
    with pytest.raises(PplcError, match="(?s)no draws of 'sgima'.*did you mean 'sigma'"):
        fit["sgima"]
    with pytest.raises(PplcError, match="no draws of 'zz'"):
        fit.element_names("zz")
    with pytest.raises(PplcError, match="it is a folder"):
        fit.to_netcdf(tmp_path)
    with pytest.raises(PplcError, match="expected the path of a file to write, not int"):
        fit.to_netcdf(5)
    with pytest.raises(PplcError, match="is not a netCDF file"):
        pplc.Posterior.from_netcdf(__file__)
    with pytest.raises(PplcError, match="cannot read"):
        pplc.load(tmp_path / "missing.nc")


def test_a_bug_is_an_internal_error_that_asks_to_be_reported(conditioned, monkeypatch):
    """Any exception that is not a user's mistake leaves a public method as InternalError,
    chained to the original (its traceback is kept)."""
    def broken(*args, **kwargs):
        raise IndexError("index 0 is out of bounds")
    monkeypatch.setattr(type(conditioned), "_initial_positions", broken)
    assert pplc.InternalError is InternalError and pplc.PplcError is PplcError
    with pytest.raises(InternalError, match="please report it") as caught:
        conditioned.sample(chains=1, warmup=5, draws=5)
    assert "IndexError: index 0 is out of bounds" in str(caught.value)
    assert isinstance(caught.value.__cause__, IndexError)


def _literal(text: str) -> str:
    import re
    return re.escape(text)


@pytest.mark.parametrize("init", ["uniform", "pathfinder"])
def test_a_density_nan_everywhere_names_the_statement_whatever_the_init(init):
    source = SOURCE.replace("w: simplex[3] ~ Dirichlet([1.0, 1.0, 1.0])\n", "") \
        + "factor(log(-sigma))\n"
    nan = pplc.compile(source).condition({"N": 3, "y": [0.1, 0.2, 0.3]})
    with pytest.raises(PplcError, match="<model>:7:1: error: no finite starting point after "
                                        "100 tries: this statement's term of the log "
                                        "density is nan"):
        nan.sample(chains=1, warmup=5, draws=5, init=init)


def test_options_fuzzed_are_accepted_or_refused_in_words():
    """2 000 random values of every type for every option: each is taken (as the type the
    sampler wants) or refused with PplcError, never another exception. No JAX: ~0.1 s."""
    import random

    from pplc.options import check_options

    rng = random.Random(15)
    pool = [0, 1, -1, 2 ** 63, 2 ** 64 + 1, -(2 ** 70), 0.5, 1.0, 1e3, 1e300, float("nan"),
            float("inf"), -0.0, True, None, "4", "diag", "", [], {}, (1,), np.int64(3),
            np.float32(0.9), np.array(2), np.array([1, 2]), 3 + 0j, object()]
    for _ in range(2000):
        name = rng.choice(sorted(OPTIONS))
        value = rng.choice(pool)
        try:
            checked = check_options(**{name: value})[name]
        except PplcError as exc:
            assert str(exc).startswith(f"error: {name}: expected "), str(exc)
            continue
        kind = OPTIONS[name].kind
        if checked is None:
            assert value is None   # an option that may be left out (max_iterations)
        elif kind == "whole":
            assert type(checked) is int and checked >= OPTIONS[name].minimum
        elif kind == "probability":
            assert type(checked) is float and 0 < checked < 1
        else:
            assert checked in OPTIONS[name].choices
