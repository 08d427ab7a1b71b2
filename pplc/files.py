"""Writing an output file whole or not at all, for every command and layer.

A file is written under a temporary name in its own folder, then renamed over the final
name: a full disk, Ctrl-C or a crash leave an existing file as it was, never half of a
new one. It gets the permissions the user's umask gives any new file (0666 less the
umask), not the private 0600 of `tempfile.mkstemp`. A file that cannot be written is the
user's `PplcError`, naming the file and the cause. Like `pplc.errors`, it imports nothing
of pplc's layers, so the IR's pictures and the inference's draws are written alike.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from pplc.errors import error


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which then replaces `path`."""
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"expected the path of a file to write, not {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise error(f"cannot write '{path}': it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write '{path}': {exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):   # ENOSPC, EFBIG, EDQUOT, EIO, ...
            raise error(f"cannot write '{path}': {exc.strerror or exc}",
                        hint="nothing was written under that name; an existing file there "
                             "is unchanged") from None
        raise


def write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """`payload` as the whole content of `path` (`write_atomically`)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(payload)
    write_atomically(path, write)


def umask() -> int:
    """The process's umask (read by setting it, so set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
