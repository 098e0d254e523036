"""Writing outputs so that a crash never leaves a half-written one behind.

Everything a stage writes goes to a temporary sibling first and is renamed into
place when complete: rename is atomic on one filesystem, so a reader (DVC, the next
stage, a user) sees either the old output or the whole new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def _old_prefix(path: Path) -> str:
    return f".{path.name}.old-"


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Clean up after an earlier writer of `path` that was killed; returns what it removed.

    A writer killed inside `atomic_dir` / `atomic_file` leaves its temporary sibling
    (`.<name>.tmp-*`: for model outputs, gigabytes). Only one process writes a given
    output at a time (one DVC stage owns it; under torchrun only the main process
    writes), so anything with that prefix is an orphan when the next writer starts.
    A writer killed between the two renames of the fallback replace (see
    `_swap_into_place`) leaves the previous output whole in `.<name>.old-*`, and
    `path` missing: that output is put back first.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    olds = sorted(path.parent.glob(f"{_old_prefix(path)}*/{path.name}"))
    if olds and not (path.exists() or path.is_symlink()):
        os.replace(olds[-1], path)
    stale = [p for p in path.parent.iterdir()
             if p.name.startswith((_temp_prefix(path), _old_prefix(path)))]
    for p in stale:
        _remove(p)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported.

    The standard library has no atomic swap, and `os.replace` cannot put a directory
    over a non-empty one; glibc's renameat2 can, where the filesystem supports it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the filesystem (or kernel) cannot exchange
    raise OSError(ctypes.get_errno(), f"cannot exchange {a} and {b}")


def _swap_into_place(new: Path, path: Path) -> None:
    """Put the directory `new` at `path`; the previous `path`, if any, is deleted after.

    With an atomic exchange, `path` holds the old output or the new one at every
    instant. Without it: the old one is renamed aside, the new one in, and only then
    is the old one deleted, so a kill leaves the old output or the new one whole
    (for the instant between the renames, beside `path`, where the next writer
    restores it from).
    """
    if not (path.exists() or path.is_symlink()):
        os.replace(new, path)
        return
    if _exchange(new, path):
        _remove(new)  # it now holds the old output
        return
    aside = Path(tempfile.mkdtemp(prefix=_old_prefix(path), dir=path.parent))
    os.replace(path, aside / path.name)
    os.replace(new, path)
    _remove(aside)


@contextlib.contextmanager
def _parents_of(path: Path) -> Iterator[None]:
    """Create `path`'s missing parent folders; remove them again if the block fails.

    A writer that fails must leave nothing behind, empty folders included.
    """
    missing = [p for p in path.parents if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` on success (`_swap_into_place`)."""
    path = Path(path)
    with _parents_of(path):
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; outputs are for everyone to read
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _swap_into_place(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success."""
    path = Path(path)
    with _parents_of(path):
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=path.parent)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are for everyone to read
        try:
            with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        os.replace(tmp, path)


def write_json(path: str | Path, obj) -> None:
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=True)
        fh.write("\n")


def read_json(path: str | Path):
    """A JSON file another stage wrote; a damaged one is a one-line error naming it."""
    from bootstrap_embeddings.errors import UserError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); the file is damaged: re-run the "
                        "stage that writes it") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_file(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --------------------------------------------------------------------------- resumable states

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # folder -> its lock's file descriptor, open while the process lives


def claim_folder(root: str | Path, key: str, what: str) -> Path:
    """root/key, claimed for this run, after removing every other folder under root that
    no live run holds.

    The folders under `root` are resumable states (`what`: "checkpoints"), each named by
    a key of its run's inputs: another key's can never resume, so it is removed — unless
    a live run holds it: a concurrent experiment of `dvc queue start -j N` training the
    same stage for the same language on other data. A run holds its folder by an
    exclusive flock on root/key/.lock, which the kernel drops when the process ends (also
    after kill -9), so an abandoned folder is always free to remove. A second live run of
    the same key waits for the first. Hand-written: no library here offers a
    lock-owned, crash-released directory claim (filelock leaves the lock file's folder
    to the caller).
    """
    import fcntl

    folder = Path(root) / key
    lock = folder / LOCK_FILE
    # this process claimed it before (a retry in the same process), and it is still there
    if folder in _held and not _locks(_held[folder], lock):
        os.close(_held.pop(folder))
    while folder not in _held:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # removed between mkdir and open: claim anew
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _locks(fd, lock):
            _held[folder] = fd
        else:
            os.close(fd)  # the holder finished and removed the folder meanwhile: claim anew
    for other in sorted(Path(root).iterdir()):
        if other != folder and other.is_dir() and not other.name.startswith("."):
            _remove_if_abandoned(other, what)
    return folder


def _locks(fd: int, lock: Path) -> bool:
    """Whether the open file `fd` is still the lock file at `lock` (not a removed one)."""
    try:
        return os.fstat(fd).st_ino == os.stat(lock).st_ino
    except FileNotFoundError:
        return False


def _remove_if_abandoned(folder: Path, what: str) -> None:
    import fcntl
    import logging

    if folder in _held:  # an earlier run of this process (runs in one process are serial)
        os.close(_held.pop(folder))
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        fd = None  # never claimed (or claimed this instant: its claim then starts anew)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return  # a live run's
    logging.getLogger(__name__).info(
        "removing the %s in %s: its params, data or code differ from this run's", what, folder)
    shutil.rmtree(folder, ignore_errors=True)  # while holding its lock
    if fd is not None:
        os.close(fd)
