"""Top-k predictions of a network with weights for images, files or folders of them.

The network's own preprocessing (``model.pretrained_cfg``, see :mod:`inceptionkit.weights`) turns
each image into its input, so a prediction never depends on the caller normalising correctly.
Unreadable files in a folder are skipped and listed; a single unreadable file is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..data.folder import IMG_EXTENSIONS, check_image, open_image, warn_if_small
from ..errors import BadValue, MissingFile
from ..weights.preprocessing import preprocessing_of


@dataclass
class Prediction:
    """One image's ``top`` classes, most probable first: names, indices and probabilities."""

    image: str
    classes: list[str]
    indices: list[int]
    probabilities: list[float]


@dataclass
class Predictions:
    """What :func:`predict` returns: the predictions, and the files skipped with the reason for each."""

    items: list[Prediction]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "predictions": [asdict(p) for p in self.items],
            "skipped": [{"image": path, "reason": why} for path, why in self.skipped],
        }


def image_files(sources: Iterable[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand files and folders into image paths; returns ``(readable, skipped with reasons)``.

    A file named directly that does not exist or cannot be read raises; inside a folder it is skipped.
    """
    readable, skipped = [], []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS))
            if not found:
                raise BadValue(f"{path} holds no image files ({', '.join(IMG_EXTENSIONS[:4])} ...)")
            for file in found:
                why = check_image(file)
                (skipped.append((file, why)) if why else readable.append(file))
        elif path.is_file():
            why = check_image(str(path))
            if why:
                raise BadValue(f"{path} cannot be read as an image ({why})")
            readable.append(str(path))
        else:
            raise MissingFile(f"{path}: no such image file or folder")
    return readable, skipped


def _open(image, mode: str) -> Image.Image:
    if isinstance(image, Image.Image):
        return warn_if_small(image.convert(mode))
    return warn_if_small(open_image(image, mode), image)


@torch.no_grad()
def predict(
    model: nn.Module,
    images: Sequence[str | os.PathLike | Image.Image] | str | os.PathLike | Image.Image,
    top: int = 5,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Predictions:
    """The ``top`` most probable classes of each image (paths, folders or PIL images).

    ``progress(done, total)`` is called after each batch. Class names come from the model's weights
    (``pretrained_cfg["classes"]``), else are the class indices.
    """
    if top < 1:
        raise BadValue(f"top must be at least 1, got {top}")
    if batch_size < 1:
        raise BadValue(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    pictures = [im for im in images if isinstance(im, Image.Image)]
    files, skipped = image_files([im for im in images if not isinstance(im, Image.Image)])
    prep = preprocessing_of(model)
    transform, mode = prep.transform(), "L" if prep.colour == "L" else "RGB"
    names = (getattr(model, "pretrained_cfg", None) or {}).get("classes")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval().to(device)
    entries = [(f"<image {i}>", im) for i, im in enumerate(pictures)] + [(f, f) for f in files]
    items = []
    try:
        for start in range(0, len(entries), batch_size):
            chunk = entries[start:start + batch_size]
            x = torch.stack([transform(_open(image, mode)) for _, image in chunk]).to(device)
            probs = model(x).float().softmax(1)
            values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
            for (label, _), p, i in zip(chunk, values.tolist(), indices.tolist()):
                items.append(Prediction(label, [names[j] if names else str(j) for j in i], i, p))
            if progress is not None:
                progress(len(items), len(entries))
    finally:
        model.train(was_training)
    return Predictions(items, skipped)
