"""The real `pplc` command in a subprocess: outputs, files, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "linear_regression"


def pplc(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "pplc.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_check_reports_roles():
    result = pplc("check", EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "latent: alpha, beta, sigma" in result.stdout
    assert "observed: y" in result.stdout


def test_ir_prints_one_node_per_variable_with_plates(tmp_path):
    model = tmp_path / "m.ppl"
    model.write_text("data J: int\ndata y: real[J]\nmu ~ Normal(0, 5)\n"
                     "for j in range(J):\n    theta[j] ~ Normal(mu, 1)\n"
                     "    y[j] ~ Normal(theta[j], 1)\n")
    result = pplc("ir", model)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("4 nodes, 4 edges")  # J->y, J->theta, mu->theta, theta->y
    assert any(l.startswith("latent        theta    <- J, mu") for l in lines)
    assert "theta[j] ~ Normal(mu, 1)    for j in range(J)" in result.stdout


def test_sample_writes_summary_and_netcdf_and_the_same_seed_gives_the_same_summary(tmp_path):
    """One run checked for its outputs, then run again with the same seed (quiet, without
    --output): the same summary. One test, so the suite starts one `pplc` process fewer."""
    summary, draws = tmp_path / "s.json", tmp_path / "d.nc"
    result = pplc("sample", EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json",
                  "--chains", 2, "--warmup", 200, "--draws", 200, "--seed", 1,
                  "--summary", summary, "--output", draws)
    assert result.returncode == 0, result.stderr
    assert "r_hat" in result.stdout and "beta[2]" in result.stdout
    doc = json.loads(summary.read_text())
    assert set(doc) >= {"parameters", "divergences", "n_grad_evals", "compile_seconds",
                        "sampling_seconds"}
    assert list(doc["parameters"]) == ["alpha", "beta[0]", "beta[1]", "beta[2]", "sigma"]
    for stats in doc["parameters"].values():
        assert set(stats) == {"mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk",
                              "ess_tail", "mcse_mean"}
    assert isinstance(doc["divergences"], int) and doc["n_grad_evals"] > 0
    # The true slope is 2.0 (simulate.py); 200 x 2 draws put it well inside 5%-95%.
    assert doc["parameters"]["beta[0]"]["q5"] < 2.0 < doc["parameters"]["beta[0]"]["q95"] + 0.2
    import arviz as az
    idata = az.from_netcdf(draws)
    assert idata.posterior["beta"].shape[:2] == (2, 200)
    assert "diverging" in idata.sample_stats

    again = tmp_path / "again.json"
    result = pplc("sample", EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json",
                  "--chains", 2, "--warmup", 200, "--draws", 200, "--seed", 1,
                  "--summary", again, "--quiet")
    assert result.returncode == 0, result.stderr
    assert json.loads(again.read_text())["parameters"] == doc["parameters"]


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "s.json"
    out.write_text("{}")
    result = pplc("sample", EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json",
                  "--summary", out)
    assert result.returncode == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "{}"


def test_model_error_exit_code_and_no_traceback(tmp_path):
    model = tmp_path / "bad.ppl"
    model.write_text("mu ~ Normal(0, 1)\nx ~ Normal(mu, sigmaa)\n")
    result = pplc("check", model)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{model}:2:16: error: unknown name 'sigmaa'")
    assert "Traceback" not in result.stderr


def test_bad_data_is_refused_before_sampling(tmp_path):
    data = tmp_path / "d.json"
    data.write_text('{"N": 3, "K": 3, "X": [[1, 2, 3]], "y": [1, 2, 3]}')
    result = pplc("sample", EXAMPLE / "model.ppl", "--data", data)
    assert result.returncode == 1
    assert "data 'X' has shape (1, 3), but its declaration says real[N, K] = (3, 3)" \
        in result.stderr
    assert "warmup" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args,message", [
    (["sample", "m.ppl"], "the following arguments are required: --data"),
    (["sample", "m.ppl", "--data", "d.json", "--chains", "0"], "expected a number >= 1"),
    (["sample", "m.ppl", "--data", "d.json", "--target-accept", "2"], "strictly between"),
    (["frobnicate"], "invalid choice"),
    ([], "no command given"),
])
def test_bad_options(args, message):
    result = pplc(*args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_files_are_user_errors(tmp_path):
    result = pplc("check", tmp_path / "nope.ppl")
    assert result.returncode == 1
    assert "cannot read model file" in result.stderr
    result = pplc("check", EXAMPLE / "model.ppl", "--data", tmp_path / "nope.json")
    assert result.returncode == 1
    assert "cannot read data file" in result.stderr


def test_internal_errors_are_labelled_as_bugs():
    """Any exception that is not a user mistake says it is a bug in pplc, with no traceback."""
    code = ("import pplc.cli as c\n"
            "def boom(args): raise RuntimeError('kaboom')\n"
            "c.COMMANDS['check'] = boom\n"
            "raise SystemExit(c.main(['check', 'x.ppl']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "internal error: RuntimeError: kaboom" in result.stderr
    assert "bug in pplc" in result.stderr and "Traceback" not in result.stderr


def test_graph_renders_a_picture_with_the_real_dot(tmp_path):
    out = tmp_path / "model.svg"
    result = pplc("graph", EXAMPLE / "model.ppl", "--data", EXAMPLE / "data.json", "-o", out)
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert "<svg" in svg and "beta" in svg and "sigma" in svg
    result = pplc("graph", EXAMPLE / "model.ppl", "-o", tmp_path / "model.jpeg")
    assert result.returncode == 1 and "Traceback" not in result.stderr


# ---------------------------------------------------------------- the summary table

SUPERNOVA = ROOT / "examples" / "supernova"
QUICK = ("--chains", 2, "--warmup", 100, "--draws", 100, "--seed", 0, "--quiet")


def _table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """The printed table's header cells and rows (each a list of its cells)."""
    lines = stdout.splitlines()
    header = next(line for line in lines if "┃" in line)
    rows = [[cell.strip() for cell in line.split("│")] for line in lines if "│" in line]
    return [cell.strip() for cell in header.split("┃")], rows


def test_summary_shows_the_parameters_first_and_an_array_on_one_line(tmp_path):
    out = tmp_path / "s.json"
    result = pplc("sample", SUPERNOVA / "model.ppl", "--data", SUPERNOVA / "data.json",
                  *QUICK, "--summary", out)
    assert result.returncode == 0, result.stderr
    header, rows = _table(result.stdout)
    labels = [row[0] for row in rows]
    assert labels == ["H0", "Om", "D_L (580)"]     # the 580 distances: one line, last
    assert header[header.index("mcse_mean") + 1] == "ess_bulk"
    d_l = dict(zip(header, rows[2]))
    assert ".." in d_l["mean"] and ".." in d_l["r_hat"] and ".." in d_l["ess_bulk"]
    assert "D_L: one line per array" in result.stdout and "--expand" in result.stdout
    # The JSON keeps every element, in the table's order, each with its MCSE.
    parameters = json.loads(out.read_text())["parameters"]
    assert list(parameters)[:3] == ["H0", "Om", "D_L[0]"] and len(parameters) == 582
    assert all(stats["mcse_mean"] > 0 for stats in parameters.values())


def test_summary_vars_pick_variables_and_elements_in_the_order_given():
    result = pplc("sample", SUPERNOVA / "model.ppl", "--data", SUPERNOVA / "data.json",
                  *QUICK, "--vars", "Om", "D_L[3]")
    assert result.returncode == 0, result.stderr
    assert [row[0] for row in _table(result.stdout)[1]] == ["Om", "D_L[3]"]


def test_summary_expand_shows_every_element_with_fit():
    result = pplc("fit", SUPERNOVA / "model.ppl", "--data", SUPERNOVA / "data.json",
                  "--method", "map", "--expand", "--quiet")
    assert result.returncode == 0, result.stderr
    labels = [row[0] for row in _table(result.stdout)[1]]
    assert labels == ["H0", "Om"] + [f"D_L[{i}]" for i in range(580)]


@pytest.mark.parametrize("vars_, message, hint", [
    (["H"], "error: unknown variable 'H'", "hint: did you mean 'H0'?"),
    (["H0", "D_L[580]"], "error: 'D_L' has no element 'D_L[580]'",
     "hint: its elements are D_L[0] .. D_L[579]"),
])
def test_summary_vars_typo_is_refused_before_sampling(vars_, message, hint):
    result = pplc("sample", SUPERNOVA / "model.ppl", "--data", SUPERNOVA / "data.json",
                  *QUICK, "--vars", *vars_)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [message, f"  {hint}"]
    assert "Traceback" not in result.stderr and "│" not in result.stdout


def test_summary_vars_typo_is_found_before_sampling(monkeypatch, capsys):
    from pplc.cli import main
    from pplc.model import ConditionedModel

    def sample(*args, **kwargs):
        raise AssertionError("sampled before checking --vars")
    monkeypatch.setattr(ConditionedModel, "sample", sample)
    status = main(["sample", str(SUPERNOVA / "model.ppl"), "--data",
                   str(SUPERNOVA / "data.json"), "--quiet", "--no-cache", "--vars", "Om", "H"])
    assert status == 1
    assert "error: unknown variable 'H'" in capsys.readouterr().err
