"""Executables kept whole on disk (inference/programs.py, `persist_executables`).

What must hold: a program loaded from disk is the program that would have been compiled
(same draws, bit for bit), and a key never names two different programs: a change of the
model's text, of the data's shapes, or of pplc itself is a miss, not a stale program; a
change of data values (a runtime argument) is a hit with the new values' results. An
entry that cannot be read is compiled anew. An executable that XLA's own cache supplied
is not written (loading such a copy fails when it runs), and nothing breaks for it.

Within one process a newly compiled Model has new log-density objects, so the in-memory
cache misses and the disk is asked: that exercises write and read. The CLI test runs two
processes, as a user does.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import monitoring
from jax.experimental import serialize_executable

import pplc
from pplc.inference import programs

ROOT = Path(__file__).resolve().parents[2]
SCHOOLS = ROOT / "examples" / "eight_schools"
DATA = json.loads((SCHOOLS / "data.json").read_text())
SOURCE = (SCHOOLS / "model.ppl").read_text()
# metric="diag": whatever the metric, a loaded program must be the compiled one, and the
# diagonal one compiles in ~1 CPU-s less than what auto picks here (low-rank), once per
# compile of the sequence below (issue 16 item 7); the low-rank program is loaded from
# disk in the CLI test at the end.
RUN = dict(chains=1, warmup=60, draws=40, seed=3, progress=False, metric="diag")


_SEQUENCE = """
import json, sys
from pathlib import Path
import numpy as np
import pplc
from pplc.cache import enable_compilation_cache
from pplc.inference import programs

source, data, run = json.loads(sys.argv[2])
folder = Path(sys.argv[1])
enable_compilation_cache(folder)   # a cache of this process's own: every compile is fresh


def draws(source, data):
    p = pplc.compile(source).condition(data).sample(**run)
    return np.concatenate([np.ravel(p[name]) for name in ("mu", "tau", "theta")]).tolist()


def loads(source, data):
    before = programs.counts()["loaded"]
    out = draws(source, data)
    return programs.counts()["loaded"] - before, out


other_values = {**data, "y": [v + 1.0 for v in data["y"]]}
other_text = source.replace("5)", "6)", 1)
fewer = {"J": 7, "y": data["y"][:7], "sigma": data["sigma"][:7]}
result = {}
programs.persist_executables(folder / "executables")
result["first"] = draws(source, data)
stored = sorted((folder / "executables").iterdir())
result["stored"] = len(stored)
result["same"] = loads(source, data)        # a new Model: only the disk can answer
result["other values"] = loads(source, other_values)
result["other text"] = loads(other_text, data)
result["other shapes"] = loads(source, fewer)
for path in stored:
    path.write_bytes(b"not an executable")
result["unreadable"] = loads(source, data)
programs.persist_executables(None)          # the references: compiled, not loaded
result["reference"] = {name: draws(*case) for name, case in {
    "same": (source, data), "other values": (source, other_values),
    "other text": (other_text, data), "other shapes": (source, fewer)}.items()}
print(json.dumps(result))
"""


def test_a_loaded_program_gives_the_compiled_ones_draws_and_keys_miss_on_any_change(tmp_path):
    out = subprocess.run([sys.executable, "-c", _SEQUENCE, str(tmp_path),
                          json.dumps([SOURCE, DATA, RUN])],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    reference = r["reference"]
    assert reference["same"] != reference["other text"] != reference["other values"]
    assert r["stored"] >= 2, "nothing was written"
    assert r["first"] == reference["same"]
    n, draws = r["same"]
    assert n >= 2 and draws == reference["same"]
    n, draws = r["other values"]          # values are arguments: a hit, with their results
    assert n >= 2 and draws == reference["other values"]
    n, draws = r["other text"]            # another density: a miss
    assert n == 0 and draws == reference["other text"]
    n, draws = r["other shapes"]          # other shapes: a miss
    assert n == 0 and draws == reference["other shapes"]
    n, draws = r["unreadable"]            # unreadable entries: compiled anew
    assert n == 0 and draws == reference["same"]


def test_a_model_with_an_extern_is_never_written(tmp_path):
    source = "extern def shift(x)\n" + SOURCE.replace("mu ~ Normal(0, 5)", "mu ~ Normal(shift(0.0), 5)")
    assert source.count("shift(") == 2
    programs.persist_executables(tmp_path / "executables")
    try:
        pplc.compile(source, externs={"shift": lambda x: x}).condition(DATA).sample(**RUN)
    finally:
        programs.persist_executables(None)
    assert not (tmp_path / "executables").exists() or not any((tmp_path / "executables").iterdir())


_PROCESS = """
import json, sys
import numpy as np
import pplc
from pplc.cache import enable_compilation_cache
from pplc.inference import programs
folder = sys.argv[1]
enable_compilation_cache(folder)
if sys.argv[2] == "keep":
    programs.persist_executables(folder + "/executables")
p = pplc.compile({source!r}).condition({data!r}).sample(chains=1, warmup=60, draws=40, seed=3,
                                                        progress=False, metric="diag")
print(json.dumps({{"draws": np.ravel(p["theta"]).tolist(), **programs.counts()}}))
"""


def test_programs_that_xlas_cache_supplied_are_not_written_and_later_runs_still_work(tmp_path):
    # (metric diag, as RUN; a low-rank program that XLA's cache supplies runs in
    # test_metric_auto.py's warm-cache test)
    code = _PROCESS.format(source=SOURCE, data=DATA)

    def run(mode):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache"), mode],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    plain = run("xla-only")        # fills XLA's cache only
    supplied = run("keep")         # XLA's cache supplies the programs: nothing written
    again = run("keep")            # must run (a broken copy would fail here) and agree
    assert supplied["loaded"] == 0 and again["loaded"] == 0
    assert plain["draws"] == supplied["draws"] == again["draws"]


def test_the_second_pplc_sample_loads_its_programs_and_prints_the_same_summary(tmp_path):
    env_cache = {"PPLC_CACHE_DIR": str(tmp_path / "cache")}
    import os

    def run(name):
        out = subprocess.run(
            [sys.executable, "-m", "pplc.cli", "sample", str(SCHOOLS / "model.ppl"), "--data",
             str(SCHOOLS / "data.json"), "--chains", "2", "--warmup", "100", "--draws", "100",
             "--seed", "5", "--quiet", "--summary", str(tmp_path / name)],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env_cache})
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads((tmp_path / name).read_text())

    first, second = run("first.json"), run("second.json")
    kept = list((tmp_path / "cache").glob("*/executables/*.executable"))
    assert kept, "the first run kept no executable"
    assert first["parameters"] == second["parameters"]


def test_a_copy_without_its_machine_code_is_neither_written_nor_loaded(tmp_path, monkeypatch):
    """The second guard alone (the hit count is blinded: no event listener hears XLA's
    cache): a program that XLA's cache supplied is not written, and such a copy put on
    disk under a program's key is not loaded: the program is compiled anew and runs."""
    if not jax.config.jax_compilation_cache_dir:
        pytest.skip("the session runs without a persistent compilation cache")
    if jax.default_backend() != "cpu":
        pytest.skip("object code in the serialized bytes is XLA:CPU's format")
    x = np.linspace(0.0, 1.0, 11)

    def build():   # a new function object each call: only XLA's disk cache can answer
        def f(u, data):   # a program of its own: no other test compiles it
            return jnp.cumsum(jnp.tanh(u * data) * 2.71828) + u[::-1]
        return f

    def fn_key():  # a fresh log density each time: pplc's in-memory cache misses
        f = build()
        return programs.ContentKeyed(f, lambda: (x, x))

    jax.jit(build()).lower(x, x).compile()           # into XLA's cache
    supplied = jax.jit(build()).lower(x, x).compile()  # out of it
    serialized, in_tree, out_tree = serialize_executable.serialize(supplied)
    assert b"\x7fELF" not in serialized, "XLA's cache kept the object code: nothing to test"

    folder = tmp_path / "executables"
    programs.persist_executables(folder)
    try:
        monkeypatch.setattr(monitoring, "_event_listeners", [])   # the hit goes unheard
        programs.compiled(fn_key(), ("machine code",), build, x, x)
        assert not folder.exists() or not any(folder.iterdir()), "a copy without code was written"
        monkeypatch.undo()

        fresh = fn_key()   # a key of its own, compiled fresh and written ...
        programs.compiled(fresh, ("fresh",), lambda: lambda u, d: build()(u, d) + 1.0, x, x)
        (entry,) = folder.iterdir()
        entry.write_bytes(pickle.dumps((serialized, in_tree, out_tree)))   # ... then poisoned
        before = programs.counts()
        executable, _ = programs.compiled(fn_key(), ("fresh",),
                                          lambda: lambda u, d: build()(u, d) + 1.0, x, x)
        assert programs.counts()["loaded"] == before["loaded"]
        np.testing.assert_allclose(executable(x, x), build()(x, x) + 1.0)
    finally:
        programs.persist_executables(None)


def test_a_program_that_jax_hands_back_from_memory_is_not_written(tmp_path, monkeypatch):
    """The first guard alone (the bytes' check switched off): `jax.jit` of a function object
    JAX has compiled before returns that executable without compiling and without any
    event; when it came from XLA's cache, its copy would lack its code. That is what a
    second model's run met for a program not tied to its density (the window-end update):
    so only a program JAX reported compiling, on this thread, is written."""
    if not jax.config.jax_compilation_cache_dir:
        pytest.skip("the session runs without a persistent compilation cache")
    monkeypatch.setattr(programs, "_holds_machine_code", lambda serialized: True)
    x = np.linspace(-1.0, 1.0, 9)

    def make():
        def f(u, data):   # a program of its own: no other test compiles it
            return jnp.cumprod(jnp.cos(u - data) * 1.61803) - u[::-1]
        return f

    jax.jit(make()).lower(x, x).compile()   # into XLA's cache
    f = make()
    jax.jit(f).lower(x, x).compile()        # out of it, and kept in JAX's memory for f
    folder = tmp_path / "executables"
    programs.persist_executables(folder)
    try:
        executable, _ = programs.compiled(programs.ContentKeyed(f, lambda: (x, x)),
                                          ("from memory",), lambda: f, x, x)
        assert not folder.exists() or not any(folder.iterdir()), "a copy from memory was written"
        np.testing.assert_allclose(executable(x, x), f(x, x))

        def g(u, data):   # a control: a program compiled here is written
            return jnp.cumprod(jnp.sin(u - data) * 1.32471) - u[::-1]
        programs.compiled(programs.ContentKeyed(g, lambda: (x, x)), ("compiled",), lambda: g, x, x)
        assert len(list(folder.iterdir())) == 1
    finally:
        programs.persist_executables(None)
