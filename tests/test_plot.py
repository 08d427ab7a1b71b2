"""`pplc plot FIT.nc --kind trace|pair|ppc|forest -o FILE.png`: ArviZ's pictures of a saved
fit, and the user's mistakes refused with exit status 1 and no traceback, before any work.

The fit is made by hand (a Posterior saved to netCDF) so that no test waits for a sampler.
"""

from __future__ import annotations

import numpy as np
import pytest

from pplc.cli import main
from pplc.inference.posterior import Posterior

PNG = b"\x89PNG\r\n\x1a\n"


def _fit(path, predictive: bool = True):
    rng = np.random.default_rng(0)
    posterior = Posterior(
        draws={"mu": rng.normal(size=(2, 40)), "tau": rng.gamma(2.0, size=(2, 40)),
               "theta": rng.normal(size=(2, 40, 3))},
        sample_stats={"diverging": np.zeros((2, 40), bool)}, n_grad_evals=1,
        compile_seconds=0.0, sampling_seconds=0.0,
        observed_data={"y": rng.normal(size=3)} if predictive else {},
        posterior_predictive={"y": rng.normal(size=(2, 40, 3))} if predictive else {},
        roles={"mu": "latent", "tau": "latent", "theta": "latent"},
        attrs={"inference_method": "nuts"})
    posterior.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("fit") / "fit.nc")


@pytest.mark.parametrize("kind", ["trace", "pair", "ppc", "forest"])
def test_each_kind_draws_a_picture(fit, tmp_path, kind, capsys):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", str(fit), "--kind", kind, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 5000
    assert f"picture written to {out}" in capsys.readouterr().out


def test_vars_pick_variables_and_a_pair_plot_says_what_it_leaves_out(fit, tmp_path, capsys):
    out = tmp_path / "pair.svg"
    assert main(["plot", str(fit), "--kind", "pair", "-o", str(out)]) == 0
    # mu, tau and theta's 3 elements are 5 scalars: all shown.
    assert "left out" not in capsys.readouterr().err
    assert main(["plot", str(fit), "--kind", "forest", "--vars", "theta", "-o",
                 str(tmp_path / "f.png")]) == 0


def _refused(argv, capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: ")
    return err


def test_mistakes_are_refused_with_status_1(fit, tmp_path, capsys):
    out = str(tmp_path / "p.png")
    err = _refused(["plot", str(tmp_path / "nope.nc"), "--kind", "trace", "-o", out], capsys)
    assert "nope.nc" in err and "no such file" in err
    err = _refused(["plot", str(fit), "--kind", "trase", "-o", out], capsys)
    assert "unknown kind of plot 'trase'" in err and "did you mean 'trace'?" in err
    err = _refused(["plot", str(fit), "--kind", "trace", "--vars", "tua", "-o", out], capsys)
    assert "unknown variable 'tua'" in err and "did you mean 'tau'?" in err
    err = _refused(["plot", str(fit), "--kind", "ppc", "--vars", "mu", "-o", out], capsys)
    assert "unknown variable 'mu'" in err
    err = _refused(["plot", str(fit), "--kind", "trace", "-o", str(tmp_path / "p.jpg")],
                   capsys)
    assert "unknown picture format '.jpg'" in err
    no_predictive = _fit(tmp_path / "plain.nc", predictive=False)
    err = _refused(["plot", str(no_predictive), "--kind", "ppc", "-o", out], capsys)
    assert "no posterior predictive draws" in err and "--predict" in err
    assert not (tmp_path / "p.png").exists()


def test_output_is_checked_before_the_fit_is_read(tmp_path, capsys):
    missing_fit = str(tmp_path / "nope.nc")
    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep")
    err = _refused(["plot", missing_fit, "--kind", "trace", "-o", str(existing)], capsys)
    assert "already exists" in err and existing.read_bytes() == b"keep"
    err = _refused(["plot", missing_fit, "--kind", "trace", "-o",
                    str(tmp_path / "no" / "such" / "p.png")], capsys)
    assert "does not exist" in err
