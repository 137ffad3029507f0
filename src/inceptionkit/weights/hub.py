"""Weight files in the usual torch hub cache: found there, else downloaded with a hash check.

``$TORCH_HOME/hub/checkpoints/<file>`` (``~/.cache/torch/hub/checkpoints`` by default) is where
torchvision keeps its files too, so a file already fetched by torchvision is reused. A download
goes to a ``.partial`` file first and is renamed only when its sha256 matches, so a broken or
wrong download never takes the file's place; a cached file is checked against the same digest.
"""

from __future__ import annotations

from pathlib import Path

import torch.hub
from torch.hub import download_url_to_file

from ..files import sha256_of


class WeightsUnavailable(FileNotFoundError):
    """The file is neither in the cache nor downloadable: says the url and where to put the file."""


class HashMismatch(ValueError):
    """A file whose sha256 is not the source's."""


def checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, as torch.hub and torchvision use it."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def check_hash(path: Path, expected: str | None) -> None:
    """Refuse ``path`` unless its sha256 starts with ``expected`` (a full digest or torch hub's prefix)."""
    if not expected:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected.lower()):
        raise HashMismatch(f"{path} has sha256 {actual}, but the source's is {expected}: the file is damaged or "
                           f"not the published one; delete it to download it again")


def cached_file(url: str, file_name: str, sha256: str | None, *, progress: bool = True) -> Path:
    """The local path of ``file_name``: from the cache (hash-checked), else downloaded from ``url`` into it."""
    path = checkpoint_dir() / file_name
    if path.is_file():
        check_hash(path, sha256)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(url, str(path), hash_prefix=sha256.lower() if sha256 else None, progress=progress)
    except RuntimeError as exc:  # torch.hub's hash check; it has removed the partial file
        if "invalid hash value" in str(exc):
            raise HashMismatch(f"the file downloaded from {url} does not have the source's sha256 {sha256}: "
                               f"it was discarded, nothing was written to {path}") from None
        raise
    except OSError as exc:  # no network, refused, not found (urllib's URLError is an OSError)
        reason = getattr(exc, "reason", None) or exc
        raise WeightsUnavailable(
            f"{file_name} is not in the cache and could not be downloaded ({reason}).\n"
            f"Download {url}\nand put it at {path} (or set TORCH_HOME to the folder holding hub/checkpoints/)"
        ) from None
    return path
