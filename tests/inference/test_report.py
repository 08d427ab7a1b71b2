"""The summary table (`pplc.inference.report`): which rows, in which order, and how an
array takes one line; on draws made by hand, so the expected rows follow from them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

import pplc
from pplc.errors import PplcError
from pplc.inference.posterior import Posterior
from pplc.inference.report import EXPAND_AT_MOST, print_summary, summary_rows


def _posterior(roles=None, **shapes) -> Posterior:
    rng = np.random.default_rng(0)
    draws = {name: rng.normal(size=(2, 100) + shape) + 10.0 * k
             for k, (name, shape) in enumerate(shapes.items())}
    return Posterior(draws=draws, sample_stats={}, n_grad_evals=0, compile_seconds=0.0,
                     sampling_seconds=0.0, roles=dict(roles or {}))


# The draws come in the order NUTS returns them (sorted by name); the roles in the
# model's order: latents `b`, `a`, `big`, then deterministics `D` (an array) and `s`.
ROLES = {"b": "latent", "a": "latent", "D": "deterministic", "big": "latent",
         "s": "deterministic"}
SHAPES = {"D": (5,), "a": (3,), "b": (), "big": (EXPAND_AT_MOST + 1,), "s": ()}


def test_latents_first_in_the_models_order_then_deterministics():
    posterior = _posterior(ROLES, **SHAPES)
    assert posterior.variable_names() == ["b", "a", "big", "D", "s"]
    rows = summary_rows(posterior.summary(), posterior)
    assert [row.label for row in rows] == ["b", "a[0]", "a[1]", "a[2]",
                                           f"big ({EXPAND_AT_MOST + 1})", "D (5)", "s"]
    assert [row.collapsed for row in rows if row.collapsed] == ["big", "D"]


def test_an_array_line_gives_the_range_of_means_ess_and_r_hat():
    posterior = _posterior(ROLES, **SHAPES)
    summary = posterior.summary()
    (row,) = [row for row in summary_rows(summary, posterior) if row.collapsed == "D"]
    cells = dict(zip(("mean", "sd", "q5", "q50", "q95", "mcse_mean", "ess_bulk",
                      "ess_tail", "r_hat"), row.cells))
    elements = [summary[f"D[{i}]"] for i in range(5)]

    def spread(key, fmt):
        values = [s[key] for s in elements]
        return f"{fmt(min(values))}..{fmt(max(values))}"
    assert cells["mean"] == spread("mean", lambda x: f"{x:.3f}")
    assert cells["r_hat"] == spread("r_hat", lambda x: f"{x:.3f}")
    assert cells["ess_bulk"] == spread("ess_bulk", lambda x: f"{x:.0f}")
    assert cells["ess_tail"] == spread("ess_tail", lambda x: f"{x:.0f}")
    assert cells["sd"] == cells["q5"] == ""


def test_expand_and_var_names_show_the_elements():
    posterior = _posterior(ROLES, **SHAPES)
    summary = posterior.summary()
    expanded = [row.label for row in summary_rows(summary, posterior, expand=True)]
    assert expanded == list(summary) and not any("(" in label for label in expanded)
    picked = [row.label for row in summary_rows(summary, posterior, var_names=["D", "b"])]
    assert picked == ["D[0]", "D[1]", "D[2]", "D[3]", "D[4]", "b"]
    assert [row.label for row in summary_rows(summary, posterior, var_names="a[1]")] == ["a[1]"]


def test_a_partial_summary_shows_only_its_elements():
    """examples/supernova/demo.py prints the table of a summary cut to (H0, Om)."""
    posterior = _posterior(ROLES, **SHAPES)
    summary = posterior.summary()
    part = {name: summary[name] for name in ("s", "a[1]")}
    assert [row.label for row in summary_rows(part, posterior, expand=True)] == ["a[1]", "s"]


def test_without_roles_every_variable_is_a_latent_in_the_draws_order():
    posterior = _posterior(None, b=(), a=(2,))
    assert [row.label for row in summary_rows(posterior.summary(), posterior)] == \
        ["b", "a[0]", "a[1]"]


def test_python_var_names_pick_variables_and_elements_in_the_order_asked():
    posterior = _posterior(ROLES, **SHAPES)
    assert list(posterior.summary(var_names=["s", "a"])) == ["s", "a[0]", "a[1]", "a[2]"]
    assert list(posterior.summary(var_names=["D[3]", "b"])) == ["D[3]", "b"]
    assert posterior.summary(var_names="b")["b"] == posterior.summary()["b"]


@pytest.mark.parametrize("wanted, message, hint", [
    ("bg", "unknown variable 'bg'", "did you mean 'big'?"),
    ("zzz", "unknown variable 'zzz'", "the variables are b, a, big, D, s"),
    ("a[3]", "'a' has no element 'a[3]'", "its elements are a[0], a[1], a[2]"),
])
def test_an_unknown_name_is_a_user_error_with_a_hint(wanted, message, hint):
    posterior = _posterior(ROLES, **SHAPES)
    with pytest.raises(PplcError) as raised:
        posterior.summary(var_names=["b", wanted])
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.message == message and diagnostic.hint == hint


def test_the_printed_table_has_mcse_next_to_ess_and_says_how_to_expand():
    posterior = _posterior(ROLES, **SHAPES)
    out = io.StringIO()
    print_summary(posterior.summary(), posterior, console=Console(file=out, width=200))
    text = out.getvalue()
    header = [cell.strip() for cell in text.splitlines()[0].split("┃")]
    assert header[header.index("mcse_mean") + 1] == "ess_bulk"
    assert "big, D: one line per array" in text and "--vars NAME or --expand" in text
    mcse = f"{posterior.summary()['b']['mcse_mean']:.3f}"
    (row_b,) = [line.split("│") for line in text.splitlines() if line.split()[0] == "b"]
    assert row_b[header.index("mcse_mean")].strip() == mcse


def test_roles_are_the_model_as_written():
    """A noncentered `theta` is the user's latent (its `theta_std` never shows); a
    summed-out `z` is a latent and `z_prob` a deterministic; order is the model's."""
    schools = pplc.compile("examples/eight_schools/model.ppl").condition(
        "examples/eight_schools/data.json")
    assert "theta_std" in schools.graph
    assert schools.roles == {"mu": "latent", "tau": "latent", "theta": "latent"}
    supernova = pplc.compile("examples/supernova/model.ppl").condition(
        "examples/supernova/data.json")
    assert supernova.roles == {"H0": "latent", "Om": "latent", "D_L": "deterministic"}
    mixture = pplc.compile("examples/gaussian_mixture/model.ppl").condition(
        "examples/gaussian_mixture/data.json")
    assert mixture.roles == {"w": "latent", "mu": "latent", "sigma": "latent",
                             "z": "latent", "z_prob": "deterministic"}
