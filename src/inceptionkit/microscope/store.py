"""The microscope's picture store: each picture is a file named by a hash of what made it.

The name hashes the network's identity (its class, preprocessing and every weight), what the picture
shows (kind, layer, channel) and the settings it was made with. A second run on the same inputs finds
every picture and renders nothing; a change of weights or settings makes new names, never a stale
hit. Pictures are written atomically (:func:`~inceptionkit.files.atomic_save`), so an interrupted
run leaves only complete pictures, and pages are always written afresh from them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..files import atomic_save

CACHE_VERSION = 2  # raise it when a change of code makes other pictures from the same inputs


class PictureStore:
    """Pictures under ``folder``, named by ``key(...)``; counts what was made and what was found."""

    def __init__(self, folder: str | Path, identity: str):
        self.folder = Path(folder)
        self.identity = identity
        self.rendered = 0
        self.reused = 0

    def path(self, *what, suffix: str = ".png") -> Path:
        """The file for the picture described by ``what`` (JSON-able values) of this network."""
        text = json.dumps([CACHE_VERSION, self.identity, *what], sort_keys=True, default=str)
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}{suffix}"

    def missing(self, paths: dict) -> list:
        """The keys of ``paths`` whose picture is not there yet (the others are counted as reused)."""
        absent = self.absent(paths)
        self.reused += len(paths) - len(absent)
        return absent

    @staticmethod
    def absent(paths: dict) -> list:
        """The keys of ``paths`` whose picture is not there yet, counting nothing."""
        return [key for key, path in paths.items() if not path.exists()]

    def save(self, path: Path, write: Callable[[str], None]) -> Path:
        """Write one picture through ``write(tmp_path)``, atomically; counted as rendered."""
        atomic_save(path, write)
        self.rendered += 1
        return path

    def save_image(self, path: Path, image, text: dict[str, str] | None = None) -> Path:
        """Save a PIL image as PNG, with ``text`` in its text chunks (read back by :func:`png_text`)."""
        info = PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        return self.save(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG written by :meth:`PictureStore.save_image`."""
    with Image.open(path) as image:
        return dict(image.text)
