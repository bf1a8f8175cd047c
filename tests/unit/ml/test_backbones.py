from __future__ import annotations

import numpy as np
import pytest
import torch

from imgsearch_gui.base.errors import BackboneUnavailableError
from imgsearch_gui.ml import backbones
from imgsearch_gui.ml.backbones import load_backbone


def test_registry_lists_offered_backbones():
    names = backbones.available()
    assert names[0] == "efficientnet_lite0"
    assert {"efficientnet_lite2", "vgg16", "resnet50", "resnet101"} <= set(names)
    assert "tiny" not in names and "tiny" in backbones.available(include_hidden=True)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'"):
        load_backbone("alexnet")


def test_torchvision_weights_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BackboneUnavailableError, match="--weights"):
        load_backbone("resnet50")


def test_torchvision_weights_from_user_file(tmp_path):
    import torchvision

    model = torchvision.models.vgg16(weights=None)
    path = tmp_path / "vgg.pth"
    torch.save(model.state_dict(), path)
    bb = load_backbone("vgg16", weights=str(path))
    out = bb(torch.rand(1, 3, 64, 96))
    # conv5_3 after ReLU, pool5 dropped: stride 16, 512 channels, non-negative.
    assert out.shape == (1, 512, 4, 6) and out.min() >= 0
    assert bb.weights_id == backbones.file_digest(path)


def test_torchvision_weights_from_torch_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    name = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "checkpoints" / name)
    out = load_backbone("resnet50")(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 2048, 2, 2)


def test_earlier_layer_truncates_the_forward():
    bb = load_backbone("tiny", layer="2")  # after the second conv
    assert bb(torch.rand(1, 3, 64, 64)).shape == (1, 32, 16, 16)
    with pytest.raises(ValueError, match="no layer"):
        load_backbone("tiny", layer="nope")


def test_tiny_is_deterministic_across_loads():
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(load_backbone("tiny")(x), load_backbone("tiny")(x))


@pytest.mark.slow
def test_lite0_weights_map_one_to_one_and_classify_a_cat(real_photos):
    """The bundled lukemelas weights load into timm's layout: chelsea is a cat (281-285)."""
    from imgsearch_gui.ml.embedder import image_to_tensor

    bb = load_backbone("efficientnet_lite0")
    x = image_to_tensor(real_photos["chelsea"], 224).float()[None] / 255
    x = (x - 0.5) / 0.5
    with torch.inference_mode():
        logits = bb.model(x)
    top = int(logits.argmax())
    assert 281 <= top <= 285, top
    assert torch.softmax(logits, -1)[0, 281:286].sum() > 0.5


@pytest.mark.slow
def test_lite0_feature_map_is_last_conv_block():
    bb = load_backbone("efficientnet_lite0")
    with torch.inference_mode():
        out = bb(torch.rand(1, 3, 224, 288))
    assert out.shape == (1, 1280, 7, 9)
    assert float(out.min()) >= 0 and float(out.max()) <= 6.0  # ReLU6


@pytest.mark.slow
def test_lite2_loads():
    bb = load_backbone("efficientnet_lite2")
    with torch.inference_mode():
        assert bb(torch.rand(1, 3, 64, 64)).shape[1] == 1280
    assert np.isfinite(sum(p.sum().item() for p in bb.parameters()))


def test_a_truncated_backbone_is_thread_safe(monkeypatch):
    """--layer: the GUI's search and indexing threads share one model. Both threads reach the
    chosen layer before either returns (a barrier where the forward stops): each still gets the
    feature map of its own input."""
    import threading

    bb = load_backbone("tiny", layer="2")
    xs = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    with torch.inference_mode():
        expected = [bb(x) for x in xs]
    barrier = threading.Barrier(2, timeout=10)
    stop_init = backbones._StopForward.__init__

    def init(self, *args, **kwargs):
        barrier.wait()
        stop_init(self, *args, **kwargs)

    monkeypatch.setattr(backbones._StopForward, "__init__", init)
    got: dict[int, object] = {}

    def work(i: int) -> None:
        try:
            with torch.inference_mode():
                got[i] = bb(xs[i])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            got[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for i in range(2):
        assert isinstance(got[i], torch.Tensor), got[i]
        assert torch.equal(got[i], expected[i])
