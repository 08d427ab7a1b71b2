"""Notebooks: a model and a conditioned model show their PGM picture, a posterior its
summary table, and sampling a progress bar that `progress=False` silences.

`test_example_notebook_in_a_real_kernel` executes `examples/notebook.ipynb` in a Jupyter
kernel (nbclient) and checks the MIME types of its outputs, which is what a notebook front
end decides from. The other tests check the pieces without a kernel.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import pplc
from pplc.inference.posterior import Posterior
from pplc.inference.progress import ProgressBar, TextBar, progress_for

ROOT = Path(__file__).resolve().parents[1]
EIGHT = ROOT / "examples" / "eight_schools"


def test_model_and_conditioned_model_show_their_picture():
    model = pplc.compile(EIGHT / "model.ppl")
    svg = model._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and ">theta<" in svg
    assert svg == model.graph_svg()
    conditioned = model.condition(EIGHT / "data.json")
    # The conditioned model's plate carries the data's size.
    assert "J = 8" in conditioned._repr_svg_() and "J = 8" not in svg


def test_posterior_shows_an_html_summary_table():
    rng = np.random.default_rng(0)
    posterior = Posterior(draws={"mu": rng.normal(size=(2, 50)),
                                 "D": rng.normal(size=(2, 50, 30))},
                          sample_stats={}, n_grad_evals=7, compile_seconds=0.1,
                          sampling_seconds=0.2, roles={"mu": "latent", "D": "deterministic"},
                          attrs={"inference_method": "nuts"})
    text = posterior._repr_html_()
    assert text.startswith("<div") and "<table>" in text and "mcse_mean" in text
    assert "<td style=\"text-align:left; font-family:monospace\">mu</td>" in text
    assert "D (30)" in text and "D[0]" not in text     # an array of deterministics: one line
    assert "2 chains x 50 draws" in text


def test_progress_argument(monkeypatch):
    calls = []
    with progress_for(lambda *a: calls.append(a)) as callback:
        callback("sampling", 1, 2, 0)
    assert calls == [("sampling", 1, 2, 0)]
    with progress_for(False) as callback:
        assert callback is None
    # Not in a notebook, stderr not a terminal (pytest captures it): quiet by default.
    with progress_for(None) as callback:
        assert callback is None
    assert isinstance(progress_for(True), ProgressBar)

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr("sys.stderr", Terminal())
    assert isinstance(progress_for(None), ProgressBar)   # someone watches: a bar
    assert progress_for(False).__enter__() is None


def test_text_bar_redraws_one_line_per_phase():
    stream = io.StringIO()
    with TextBar(stream) as bar:
        bar("warmup", 50, 100, 0)
        bar("warmup", 100, 100, 2)
        bar("sampling", 100, 100, 0)
    lines = stream.getvalue().split("\n")
    assert len(lines) == 3 and lines[-1] == ""
    assert lines[0].startswith("\rwarmup") and "\rwarmup    [" + "#" * 30 + "] 100/100  2 " \
        "divergences" in lines[0]
    assert lines[1].startswith("\rsampling  [" + "#" * 30 + "]")
    stream = io.StringIO()
    with TextBar(stream) as bar:
        bar("optimization", 10, 100, 1)     # ADVI's fourth number counts skipped steps
    assert "1 skipped steps" in stream.getvalue()


def test_example_notebook_in_a_real_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    model, conditioned, sampled, quiet = cells

    def results(cell):
        return [o for o in cell.outputs if o.output_type == "execute_result"]

    def streams(cell):
        return "".join(o.text for o in cell.outputs if o.output_type == "stream")

    assert "image/svg+xml" in results(model)[0].data
    assert "J = 8" in results(conditioned)[0].data["image/svg+xml"]
    assert "text/html" in results(sampled)[0].data
    assert "ess_bulk" in results(sampled)[0].data["text/html"]
    # The bar: a rich widget where ipywidgets is installed, a redrawn text line otherwise.
    widget = any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                 for o in sampled.outputs)
    assert widget or ("\rsampling  [" in streams(sampled) and "400/400" in streams(sampled))
    assert streams(quiet) == "" and not any(o.output_type == "display_data"
                                            for o in quiet.outputs)
    assert results(quiet)[0].data["text/plain"] == "'<?xm'"
