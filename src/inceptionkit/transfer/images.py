"""A user's folder of images for retraining: one subfolder per class, each file put in train,
validation or test by a hash of its name (TensorFlow's retrain.py rule), so that adding images
never moves the others. Files that cannot be used are reported and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..data.folder import IMG_EXTENSIONS, check_images, subfolders
from ..errors import BadValue, MissingFile

SPLITS = ("train", "validation", "test")
_BUCKETS = 2**27 - 1  # retrain.py's MAX_NUM_IMAGES_PER_CLASS: the hash's resolution


def split_of(file_name: str, validation_pct: float = 10.0, test_pct: float = 10.0) -> str:
    """'train', 'validation' or 'test' for a file, from its name alone (``_nohash_`` and what follows
    are left out, so that variants of one picture land together, as in retrain.py)."""
    stem = re.sub(r"_nohash_.*$", "", file_name)
    bucket = int(hashlib.sha1(stem.encode("utf-8")).hexdigest(), 16) % (_BUCKETS + 1)
    percent = bucket * (100.0 / _BUCKETS)
    if percent < validation_pct:
        return "validation"
    if percent < validation_pct + test_pct:
        return "test"
    return "train"


@dataclass
class ImageSet:
    """The usable images of a folder: ``files`` as (path, class index, split), the class names, and
    what was skipped with the reason (files, and whole classes)."""

    root: str
    classes: list[str]
    files: list[tuple[str, int, str]]
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    skipped_classes: list[tuple[str, str]] = field(default_factory=list)

    def part(self, split: str) -> list[tuple[str, int]]:
        """(path, class index) of one split."""
        return [(path, label) for path, label, where in self.files if where == split]

    def report(self) -> dict:
        counts = {s: len(self.part(s)) for s in SPLITS}
        return {
            "root": self.root, "classes": self.classes, "images": counts,
            "skipped_files": [{"file": p, "reason": r} for p, r in self.skipped_files],
            "skipped_classes": [{"class": c, "reason": r} for c, r in self.skipped_classes],
        }


def scan_images(root: str | os.PathLike, validation_pct: float = 10.0, test_pct: float = 10.0,
                min_images: int = 2) -> ImageSet:
    """Every readable image under ``root/<class>/``, with its split. Non-image files, unreadable images
    and classes with fewer than ``min_images`` usable images are skipped and reported; fewer than two
    classes left is an error."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise MissingFile(f"{root}: no such folder (expected {root}/<class>/<image files>)")
    if not (0 <= validation_pct < 100 and 0 <= test_pct < 100 and validation_pct + test_pct < 100):
        raise BadValue(f"validation and test percentages must leave images to train on, got "
                         f"{validation_pct} and {test_pct}")
    names = subfolders(root)
    if len(names) < 2:
        found = f"only one class ({names[0]})" if names else "no class folders"
        raise BadValue(f"{root} has {found}: retraining needs at least two classes, one subfolder of images each")
    candidates, skipped = {}, []
    for name in names:
        for directory, subdirs, files in os.walk(root / name, followlinks=True):
            subdirs.sort()
            for file in sorted(files):
                path = os.path.join(directory, file)
                if file.startswith("."):
                    continue
                if file.lower().endswith(IMG_EXTENSIONS):
                    candidates[path] = name
                else:
                    skipped.append((path, "not an image file (by its extension)"))
    problems = check_images(list(candidates))
    skipped += [(path, f"unreadable image: {why}") for path, why in problems.items() if why]
    usable = {name: [p for p, c in candidates.items() if c == name and not problems[p]] for name in names}
    skipped_classes = [(name, f"{len(files)} usable image(s), fewer than {min_images}")
                       for name, files in usable.items() if len(files) < min_images]
    classes = [name for name in names if len(usable[name]) >= min_images]
    if len(classes) < 2:
        raise BadValue(f"{root}: fewer than two classes with at least {min_images} usable images each "
                         f"({', '.join(f'{n}: {len(usable[n])}' for n in names)})")
    files = [(path, label, split_of(os.path.basename(path), validation_pct, test_pct))
             for label, name in enumerate(classes) for path in usable[name]]
    return ImageSet(str(root), classes, files, sorted(skipped), skipped_classes)
