"""Results are never lost: output paths are checked before any work, and every file is written
into a temporary place and then renamed over the old one.

Two ways to publish a set of files:

* `staged_files(out)`: the files are built in a hidden staging directory *inside* `out`, then
  each is renamed into `out` (other files in `out` are left alone). A write that fails — a
  full disk, a size limit, an interrupt — removes the staging directory and leaves every file
  of the previous run untouched.
* `staged_directory(out)`: the whole directory is built as a hidden sibling and then swapped
  in (one atomic `renameat2(RENAME_EXCHANGE)` on Linux), so a report is always all from one
  run. It only replaces a directory that is empty or holds a previous report (`MARKER`).

Renames cannot run out of disk space, and SIGINT/SIGTERM are held off while they happen, so an
interrupted run leaves either the old set of files or the new one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

#: A directory holding this file is a previous report that `staged_directory` may replace whole.
MARKER = "results.json"
#: Virtual file systems: writing results there is never what the user meant.
_VIRTUAL = ("/proc", "/sys", "/dev")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class OutputError(ValueError):
    """An output path that cannot hold the results (the message starts with the option's name)."""


def check_output_dir(path: str | Path, *, field: str = "out", replace_whole: bool = False) -> Path:
    """Refuse, before any computation, an output directory that cannot be written.

    Refused: a path that exists and is not a directory, anything under /proc, /sys or /dev,
    a path whose nearest existing ancestor is not a writable directory (probed by creating
    and removing a temporary directory: permission bits say nothing when running as root),
    and with `replace_whole`, a non-empty directory that is not a previous report."""
    p = Path(path)
    resolved = p.resolve()
    for root in _VIRTUAL:
        inside = resolved == Path(root) or Path(root) in resolved.parents
        if inside and not (resolved == Path("/dev/shm") or Path("/dev/shm") in resolved.parents):
            raise OutputError(f"{field}: {str(p)!r} is under {root}, a virtual file system; choose a directory on disk")
    if p.exists() and not p.is_dir():
        raise OutputError(f"{field}: {str(p)!r} exists and is not a directory")
    anc = resolved
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{field}: {str(anc)!r} is not a directory, so {str(p)!r} cannot be created")
    # The staging place: inside `out` for single files, beside it for a whole directory.
    probe_in = resolved.parent if replace_whole and resolved.exists() else (resolved if resolved.exists() else anc)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".cdyn-probe-", dir=probe_in))
    except OSError as err:
        raise OutputError(f"{field}: cannot write in {str(probe_in)!r}: {err.strerror or err}") from None
    if replace_whole and resolved.is_dir() and any(resolved.iterdir()) and not (resolved / MARKER).is_file():
        raise OutputError(f"{field}: {str(p)!r} is not empty and holds no previous report ({MARKER}); it would be "
                          "replaced whole, so choose a new or empty directory")
    return p


@contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit (like SIGINT raises KeyboardInterrupt), so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Delay SIGINT/SIGTERM until the block (a few renames) is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _fail(path: Path, err: OSError, target: Path) -> OutputError:
    return OutputError(f"out: writing {str(path)!r} failed ({err.strerror or err}); "
                       f"the previous contents of {str(target)!r} are unchanged")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write to; on success it is renamed to `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _fail(path, err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """`np.savez_compressed`, all or nothing."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


@contextmanager
def staged_files(out: str | Path) -> Iterator[Path]:
    """Yield a staging directory; on success every file in it replaces its namesake in `out`."""
    out = Path(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".cdyn-staging-", dir=out))
    except OSError as err:
        raise _fail(out, err, out) from None
    try:
        with _signals_as_exit():
            yield stage
            for f in stage.iterdir():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
        with _signals_held():
            for f in sorted(stage.iterdir()):
                os.replace(f, out / f.name)
    except OSError as err:
        raise _fail(stage, err, out) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux `renameat2(RENAME_EXCHANGE)`); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: no exchange on this system / fs
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


@contextmanager
def staged_directory(out: str | Path) -> Iterator[Path]:
    """Yield a fresh sibling directory; on success it replaces `out` whole (the old one is removed)."""
    out = Path(out).resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as err:
        raise _fail(out, err, out) from None
    try:
        with _signals_as_exit():
            yield stage
        with _signals_held():
            if not out.exists():
                os.rename(stage, out)
            elif not _exchange(stage, out):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.rename(out, old / "x")
                os.rename(stage, out)
                os.rename(old / "x", stage)
                old.rmdir()
        # `stage` now holds the previous report (or nothing).
    except OSError as err:
        raise _fail(stage, err, out) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
