"""Published checkpoints, one entry each, as data: where the file is, how to check it, how its keys
are laid out, what classes it predicts, how well, and what input it expects.

``get_source("inception_v3", "torchvision")`` finds an entry; ``"DEFAULT"`` picks the network's
default. Figures quote their source; the licence note says under what terms the file is shared.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import BadValue
from ..normalization import INCEPTION_MEAN, INCEPTION_STD
from .imagenet import imagenet_classes
from .preprocessing import Preprocessing


@dataclass(frozen=True)
class WeightSource:
    """One published checkpoint of one network."""

    model: str  # registered network name
    tag: str  # "torchvision", "timm", "timm.tf_in1k" ...
    url: str
    file_name: str  # its name in $TORCH_HOME/hub/checkpoints
    sha256: str | None  # full digest, or torch hub's prefix in the file name
    layout: str  # key layout: "torchvision", "timm", "inceptionkit"
    num_classes: int
    classes: str  # "imagenet" (torchvision's 1000 names) or a description of where they are
    preprocessing: Preprocessing
    top1: float | None = None
    top5: float | None = None
    accuracy_source: str = ""
    licence: str = ""
    model_kwargs: dict = field(default_factory=dict)  # constructor arguments the weights need
    has_aux: bool = False  # the file holds aux-head weights
    notes: str = ""

    @property
    def key(self) -> str:
        return f"{self.model}:{self.tag}"

    def class_names(self) -> list[str]:
        if self.classes == "imagenet":
            return imagenet_classes()
        return [str(i) for i in range(self.num_classes)]


SOURCES: dict[str, WeightSource] = {}
DEFAULTS: dict[str, str] = {}  # network -> tag of its default weights


def add(source: WeightSource, default: bool = False) -> WeightSource:
    if source.key in SOURCES:
        raise BadValue(f"weight source {source.key} is declared twice")
    SOURCES[source.key] = source
    if default:
        DEFAULTS[source.model] = source.tag
    return source


def get_source(model: str, tag: str = "DEFAULT") -> WeightSource:
    """The entry for ``model``'s weights ``tag``; an error lists what exists."""
    if tag == "DEFAULT":
        if model not in DEFAULTS:
            raise BadValue(f"no published weights for {model!r}; networks with weights: "
                             f"{', '.join(sorted(DEFAULTS))}")
        tag = DEFAULTS[model]
    key = f"{model}:{tag}"
    if key not in SOURCES:
        mine = sorted(s.tag for s in SOURCES.values() if s.model == model)
        if mine:
            close = difflib.get_close_matches(tag, mine, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BadValue(f"{model} has no weights {tag!r}{hint} (it has: {', '.join(mine)})")
        raise BadValue(f"no published weights for {model!r}; networks with weights: {', '.join(sorted(DEFAULTS))}")
    return SOURCES[key]


def list_sources(model: str | None = None) -> list[WeightSource]:
    return [s for s in SOURCES.values() if model is None or s.model == model]


# --- torchvision -------------------------------------------------------------------------------
# torchvision/models/googlenet.py and inception.py (torchvision 0.29): Weights.IMAGENET1K_V1.
# Both are TF-slim ports that expect [-1, 1] input; torchvision gets there by normalising with the
# ImageNet mean/std and undoing it inside the model (transform_input=True). Here the same numbers
# are one explicit normalisation: mean = std = 0.5 on [0, 1] pixels.
_TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); ported from Google's TF-slim checkpoints (Apache-2.0)"

add(WeightSource(
    model="googlenet", tag="torchvision",
    url="https://download.pytorch.org/models/googlenet-1378be20.pth", file_name="googlenet-1378be20.pth",
    sha256="1378be20", layout="torchvision", num_classes=1000, classes="imagenet",
    preprocessing=Preprocessing((3, 224, 224), resize=256, mean=INCEPTION_MEAN, std=INCEPTION_STD),
    top1=69.778, top5=89.530, accuracy_source="torchvision GoogLeNet_Weights.IMAGENET1K_V1 meta (ImageNet-1K val)",
    licence=_TORCHVISION_LICENCE, model_kwargs={"variant": "torchvision"}, has_aux=True,
    notes="aux-head weights are in the file but were not trained with it (torchvision: 'not trained').",
), default=True)

add(WeightSource(
    model="inception_v3", tag="torchvision",
    url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    file_name="inception_v3_google-0cc3c7bd.pth", sha256="0cc3c7bd", layout="torchvision", num_classes=1000,
    classes="imagenet",
    preprocessing=Preprocessing((3, 299, 299), resize=342, mean=INCEPTION_MEAN, std=INCEPTION_STD),
    top1=77.294, top5=93.450, accuracy_source="torchvision Inception_V3_Weights.IMAGENET1K_V1 meta (ImageNet-1K val)",
    licence=_TORCHVISION_LICENCE, has_aux=True,
), default=True)


# --- timm --------------------------------------------------------------------------------------
# timm/models/inception_v3.py, inception_v4.py, inception_resnet_v2.py default_cfgs (timm 1.0): files
# on the Hugging Face hub as timm/<model>.<tag>/model.safetensors, timm's key layout.
def _timm(model: str, tag: str, *, mean, std, crop_pct: float, top1: float | None, top5: float | None,
          sha256: str | None = None, has_aux: bool = False, timm_default: bool = False,
          notes: str = "") -> WeightSource:
    """``tag`` "timm" is timm's own default for the network; the others are "timm.<timm's tag>"."""
    return add(WeightSource(
        model=model, tag="timm" if timm_default else f"timm.{tag}",
        url=f"https://huggingface.co/timm/{model}.{tag}/resolve/main/model.safetensors",
        file_name=f"timm-{model}.{tag}.safetensors", sha256=sha256, layout="timm", num_classes=1000,
        classes="imagenet",
        preprocessing=Preprocessing.from_crop_pct((3, 299, 299), crop_pct, interpolation="bicubic", mean=mean,
                                                  std=std),
        top1=top1, top5=top5, accuracy_source=f"timm results-imagenet.csv, {model}.{tag}" if top1 else "",
        licence="Apache-2.0 (timm); weights ported from TF-slim (Apache-2.0)", has_aux=has_aux, notes=notes,
    ), default=timm_default and model not in DEFAULTS)


# Only the files whose sha256 the Hugging Face hub publishes (its 'Git LFS details') are listed;
# timm's other tags (inception_v3 tf_in1k, gluon_in1k, tf_adv_in1k; inception_resnet_v2 tf_ens_adv_in1k)
# load from a local file: inceptionkit.load(PATH).
_timm("inception_v3", "tv_in1k", mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.875, top1=77.472, top5=93.468,
      sha256="9c452c63a67fd03a38a78c401ba12d4be0e926df63c93403de3a29f6df20fefb", has_aux=True, timm_default=True,
      notes="torchvision's weights in timm's file; timm's preprocessing (bicubic, resize 341)")
_timm("inception_v4", "tf_in1k", mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.875, top1=80.144, top5=94.982,
      sha256="a756a086851c8d5a8de135ec15c76b90ea56cb5aef450e3299107e659e725bb1", timm_default=True,
      notes="TF-slim's weights with the background class removed")
_timm("inception_resnet_v2", "tf_in1k", mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.8975, top1=80.434,
      top5=95.312, sha256="dbea26b13a5fc8351919fed6a94222c0577ce324b2765fd081a798f837ca9d72", timm_default=True,
      notes="TF-slim's weights with the background class removed")


# --- Cadene's pretrainedmodels ----------------------------------------------------------------------
# pretrainedmodels/models/bninception.py: Xiong's Caffe BN-Inception, ported; Caffe's input: BGR,
# 0..255, minus the per-channel means (104, 117, 128) in B, G, R order, no scaling.
add(WeightSource(
    model="bn_inception", tag="cadene",
    url="http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
    file_name="bn_inception-52deb4733.pth", sha256="52deb4733", layout="cadene", num_classes=1000,
    classes="imagenet",
    preprocessing=Preprocessing((3, 224, 224), resize=256, mean=(104.0, 117.0, 128.0), std=(1.0, 1.0, 1.0),
                                value_range=(0.0, 255.0), colour="BGR"),
    top1=73.524, top5=91.562, accuracy_source="Cadene/pretrained-models.pytorch README (ImageNet val, 224 crop)",
    licence="BSD-3-Clause (pretrainedmodels); weights from Yuanjun Xiong's Caffe model (tsn-pytorch)",
    notes="BatchNorm vectors stored as 1 x C (an old PyTorch's shape); reshaped on load.",
), default=True)
