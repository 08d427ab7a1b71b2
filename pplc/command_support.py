"""What the `pplc` commands share: their exit statuses, loading and checking the model
(before JAX is imported), conditioning it on --data, checking output paths before any
work, and importing slow modules on a thread while XLA compiles.

Split from commands.py by job: commands.py and run_commands.py hold the commands' bodies;
this module imports only the standard library and pplc.errors, so that `pplc --version`
and `pplc check` import no JAX.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from pplc.errors import error

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_INTERRUPTED = 130


def _externs(specs: Sequence[str]) -> dict:
    """--extern f=package.module:function -> {"f": function}."""
    import importlib

    externs = {}
    for spec in specs:
        name, _, target = spec.partition("=")
        module_name, _, attribute = target.partition(":")
        if not name or not module_name or not attribute:
            raise error(f"bad --extern '{spec}'", hint="write --extern NAME=package.module:function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise error(f"--extern {name}: cannot import module '{module_name}': {exc}",
                        hint="the module must be importable (on PYTHONPATH)") from None
        try:
            externs[name] = getattr(module, attribute)
        except AttributeError:
            raise error(f"--extern {name}: module '{module_name}' has no attribute "
                        f"'{attribute}'") from None
    return externs


def load_model(args):
    """The checked model. The frontend and the IR check it first, without JAX (2-4 s to
    import): `pplc check MODEL.ppl` answers in a fraction of a second, and a mistake in the
    model is reported as fast by every command. Only with --data is `pplc.model` imported
    (checking again costs milliseconds)."""
    from pplc.checked import check_file

    checked = check_file(Path(args.model), _externs(args.extern))
    if not args.data:
        return checked
    from pplc.model import Model

    return Model(checked.program, dict(checked.externs))


def condition_model(model, args):
    """The model conditioned on --data, without the passes --no-pass names."""
    return model.condition(args.data, disabled_passes=tuple(args.no_pass))


def check_outputs(args, *options: str) -> None:
    """Every output file can be written, said before any work, so that no run is lost to
    its last step: not a folder, not already there (without --force), in a folder that
    exists (not under a file) and takes a new file, and no two outputs the same file."""
    import tempfile

    seen: dict[str, str] = {}
    for option in options:
        name = getattr(args, option, None)
        if not name:
            continue
        path = Path(name)
        if path.is_dir():
            raise error(f"output path '{path}' is a folder")
        if path.exists() and not getattr(args, "force", True):
            raise error(f"'{path}' already exists", hint="pass --force to overwrite it")
        folder = path.parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise error(f"cannot write --{option} '{path}': '{existing}' is a file, not a "
                        "folder")
        if existing != folder:
            raise error(f"cannot write --{option} '{path}': folder '{folder}' does not exist",
                        hint=f"create it first (mkdir -p {folder})")
        try:
            handle, probe = tempfile.mkstemp(dir=folder, prefix=".pplc-")
            os.close(handle)
            os.remove(probe)
        except OSError as exc:
            raise error(f"cannot write --{option} '{path}': folder '{folder}' does not take "
                        f"new files ({exc.strerror or exc})") from None
        same = os.path.realpath(path)
        if same in seen:
            raise error(f"--{seen[same]} and --{option} are the same file '{path}'",
                        hint="give each output a file of its own")
        seen[same] = option


_BACKGROUND: list = []   # threads importing modules; joined before main returns


def import_in_background(*modules: str) -> None:
    """Start importing slow modules (xarray and h5netcdf: ~1 s) on a thread while XLA compiles.

    XLA compilation releases the GIL, so the import overlaps it; a later `import` of the
    same module simply waits for this one to finish (Python's import lock). `main` joins
    the thread before it returns: an interpreter that exits while a thread is still
    importing (a user error found early) can abort in finalization ("Fatal Python error").
    """
    import importlib
    import threading

    def run():
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the real import later reports any problem
                pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _BACKGROUND.append(thread)


def join_background() -> None:
    while _BACKGROUND:
        _BACKGROUND.pop().join()
