"""Safe file output: a file is written to a temporary file beside it, fsynced, then renamed over it.

Readers see the old file or the complete new one, never a partial file, also when the process is
killed mid-write. Every file gets the mode a plain ``open()`` would give (0666 minus the umask),
whatever the writer does to its temporary file. A failure removes the temporary file and names
the real path, never the temporary one. Imports nothing heavy (the command line starts with it).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import BadPath, MissingFile

TMP_PREFIX = ".tmp-"  # temporary files start with it (checkpoints collect leftovers by it)


def _fsync_dir(folder: Path) -> None:
    """Make renames inside ``folder`` durable (POSIX only; Windows cannot open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output(path: str | os.PathLike, kind: str = "file", *, must_exist: bool = False) -> Path:
    """``path`` as a :class:`Path` once it is known to be writable as a ``kind`` ("file" or "folder"),
    checked before any work and without creating anything.

    Refused, each in one line naming the path: a parent (or any folder above) that is a file; a file
    where a folder is wanted, or a folder where a file is; a folder that cannot be written into;
    with ``must_exist``, a parent folder that does not exist (otherwise missing folders are created
    by the writer).
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    path = Path(path).expanduser()
    if path.exists():
        if kind == "file" and path.is_dir():
            raise BadPath(f"cannot write {path}: it is a folder; name a file")
        if kind == "folder" and not path.is_dir():
            raise BadPath(f"cannot write into {path}: it is a file, not a folder")
    if must_exist and not path.parent.exists():
        raise MissingFile(f"cannot write {path}: folder {path.parent} does not exist")
    # the nearest folder that exists above the path (or the folder itself), where anything new is made
    existing = path if kind == "folder" and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadPath(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadPath(f"cannot write {path}: no permission to write into {existing}")
    return path


def check_folder(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output file whose folder is missing, is not a folder or cannot be written."""
    return check_output(path, "file", must_exist=True)


def atomic_save(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` for a temporary file next to ``path``, fsync it, rename it to ``path``.

    The folder is created when missing. Returns ``path``.
    """
    path = Path(path)
    tmp = str(path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # mode as umask says, unlike mkstemp
        mode = os.stat(tmp).st_mode & 0o777
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if os.stat(tmp).st_mode & 0o777 != mode:
            # safetensors' save_file writes its own 0600 temp file (Rust's tempfile) and renames it onto tmp
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from None
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_save(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks (weights files, checkpoints, images)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
