"""Start-up (issue 16): `import pplc`, `pplc --version` and `pplc check` without data import
no JAX, ArviZ or matplotlib, and every path that does import JAX computes in float64.

JAX is imported lazily, so x64 cannot be switched on in `pplc/__init__.py`; `pplc.jax_x64` does
it, and every JAX-using module must reach JAX through it (checked here statically, and at
run time in fresh processes, since the test session itself has x64 on from other conftests).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pplc"
EIGHT = ROOT / "examples" / "eight_schools"
HEAVY = ("jax", "jaxlib", "arviz", "matplotlib", "xarray", "scipy")

# Packages whose `__init__` imports pplc.jax_x64, so that every module inside them does too.
_THROUGH_PACKAGE = ("backends", "inference", "runtime")


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


_LOADED = ("import json, sys; print(json.dumps([m for m in %r if m in sys.modules]))"
           % (HEAVY,))


def test_import_and_version_and_check_import_no_jax():
    loaded = _child(
        "import contextlib, io, pplc, pplc.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert pplc.cli.main(['--version']) == 0\n"
        f"    assert pplc.cli.main(['check', {str(EIGHT / 'model.ppl')!r}]) == 0\n"
        f"    assert pplc.cli.main(['check', '--pedantic', {str(EIGHT / 'model.ppl')!r}]) == 0\n"
        f"    assert pplc.cli.main(['ir', {str(EIGHT / 'model.ppl')!r}]) == 0\n"
        "assert 'ok' in out.getvalue(), out.getvalue()\n"
        + _LOADED)
    assert loaded == []


def test_a_mistake_is_reported_without_jax(tmp_path):
    bad = tmp_path / "bad.ppl"
    bad.write_text("mu ~ Normal(0, 1)\ny ~ Normal(mu, sigmaa)\n")
    loaded = _child(
        "import contextlib, io, pplc.cli\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    assert pplc.cli.main(['check', {str(bad)!r}]) == 1\n"
        "assert 'sigmaa' in err.getvalue(), err.getvalue()\n"
        + _LOADED)
    assert loaded == []


def test_x64_is_on_after_the_public_api_computes():
    """`pplc.compile(...).condition(...)` in a fresh process: float64 densities."""
    out = _child(
        "import json, pplc\n"
        "model = pplc.compile('mu ~ Normal(0, 1)\\ny ~ Normal(mu, 1)\\n')\n"
        "conditioned = model.condition({'y': 0.5})\n"
        "import jax, numpy as np\n"
        "value = conditioned.unconstrained_log_density(np.zeros(conditioned.dim))\n"
        "print(json.dumps([bool(jax.config.jax_enable_x64), str(value.dtype)]))")
    assert out == [True, "float64"]


def test_every_module_inside_pplc_imports_jax_through_pplc_jax():
    """A module that imports JAX sits in a package whose `__init__` imports pplc.jax_x64, or
    imports pplc.jax_x64 itself before JAX; so no import order can leave x64 off."""
    for package in _THROUGH_PACKAGE:
        init = ast.parse((PACKAGE / package / "__init__.py").read_text())
        assert "pplc.jax_x64" in _imported(init), f"pplc/{package}/__init__.py"
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in _THROUGH_PACKAGE or relative == Path("jax_x64.py"):
            continue
        imported = _imported(ast.parse(path.read_text()))
        jax_at = [i for i, name in enumerate(imported) if name.split(".")[0] == "jax"]
        if jax_at and ("pplc.jax_x64" not in imported or imported.index("pplc.jax_x64") > jax_at[0]):
            offenders.append(str(relative))
    assert offenders == []


def _imported(tree: ast.Module) -> list[str]:
    """The modules a file imports, anywhere in it, in the order of their lines."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return [name for _, name in sorted(found)]


def test_a_data_mistake_starts_no_background_import(tmp_path):
    """`pplc sample` imports ArviZ on a thread while XLA compiles, but only once the model
    and data are sound: an interpreter that exits while a thread imports can abort in
    finalization ("Fatal Python error", status -6) instead of exiting with status 1."""
    data = tmp_path / "d.json"
    data.write_text('{"J": 2, "y": [1.0, 2.0, 3.0], "sigma": [1.0, 1.0]}')
    loaded = _child(
        "import contextlib, io, threading, pplc.cli\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    status = pplc.cli.main(['sample', {str(EIGHT / 'model.ppl')!r}, '--data', "
        f"{str(data)!r}, '--quiet', '--no-cache'])\n"
        "assert status == 1, err.getvalue()\n"
        "assert threading.active_count() == 1\n"
        + _LOADED)
    assert "arviz" not in loaded


def test_a_model_mistake_is_reported_before_jax_is_imported_even_with_data(tmp_path):
    bad = tmp_path / "bad.ppl"
    bad.write_text("data y: real\nmu ~ Normal(0, 1)\ny ~ Normal(mu, sigmaa)\n")
    data = tmp_path / "d.json"
    data.write_text('{"y": 1.0}')
    loaded = _child(
        "import contextlib, io, pplc.cli\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    assert pplc.cli.main(['sample', {str(bad)!r}, '--data', {str(data)!r}]) == 1\n"
        "assert 'sigmaa' in err.getvalue(), err.getvalue()\n"
        + _LOADED)
    assert loaded == []
