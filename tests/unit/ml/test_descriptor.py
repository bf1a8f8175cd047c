"""RetrievalNet: the one normalise -> trunk -> pool + L2 (-> multi-scale) of the embedder and
fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.backbones import load_backbone
from imgsearch_gui.ml.descriptor import RetrievalNet, infer
from imgsearch_gui.ml.embedder import MULTISCALE, load_embedder
from imgsearch_gui.ml.pooling import Pooling, make_pooling


def _batch(n: int = 3, h: int = 40, w: int = 56) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)


def test_forward_is_pooling_of_the_normalised_trunk_output():
    backbone = load_backbone("tiny")
    net = RetrievalNet(backbone, Pooling("mac"))
    x = _batch()
    mean = torch.tensor(backbone.spec.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.spec.std).view(1, 3, 1, 1) * 255
    with torch.inference_mode():
        expected = LF.pool(backbone((x.float() - mean) / std), "mac")
        got = net(x)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(torch.linalg.vector_norm(got, dim=1), torch.ones(3), atol=1e-5)
    assert net.probe_dim() == 64


def test_describe_sums_the_scales_and_normalises_again():
    net = RetrievalNet(load_backbone("tiny"), Pooling("gem", p=3.0), scales=MULTISCALE)
    x = _batch()
    with torch.inference_mode():
        parts = [net.pool(net.backbone(LF.interpolate_scale(net.normalise(x), s))) for s in MULTISCALE]
        expected = LF.l2n(sum(parts))
        one = RetrievalNet(net.backbone, net.pool).describe(x)
        torch.testing.assert_close(net.describe(x), expected)
        torch.testing.assert_close(one, LF.l2n(net(x)))


def test_a_frozen_trunk_trains_only_the_pooling():
    net = RetrievalNet(load_backbone("tiny"), make_pooling("gem"))
    net(_batch(), train_trunk=False).sum().backward()
    assert net.pool.p.grad is not None
    assert all(p.grad is None for p in net.backbone.parameters())
    assert net.pooling_params() == {"p": 3.0}
    net(_batch()).sum().backward()
    assert all(p.grad is not None for p in net.backbone.parameters())


def test_the_embedder_runs_the_net():
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="crow"))
    x = _batch(2, 48, 64)
    backbone = emb.backbone
    mean = torch.tensor(backbone.spec.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.spec.std).view(1, 3, 1, 1) * 255
    with torch.inference_mode():  # the formula written out: normalise, trunk, CroW + L2, L2
        expected = LF.l2n(LF.pool(backbone((x.float() - mean) / std), "crow", a=2.0, b=2.0))
    np.testing.assert_allclose(emb.embed_batch(x), expected.numpy(), atol=1e-6)
    assert emb.backbone is emb.net.backbone and emb.net.pooling_params() == emb.pooling_params


@pytest.mark.parametrize("pooling", ["gem", "rmac"])
def test_infer_gives_float32_numpy(pooling):
    net = RetrievalNet(load_backbone("tiny"), make_pooling(pooling)).eval()
    out = infer(net, _batch(), torch.device("cpu"))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (3, 64)


def _vgg16_random() -> RetrievalNet:
    """VGG16 (conv5_3) with random weights, built without a weights file."""
    import torchvision

    from imgsearch_gui.ml.backbones import REGISTRY, LoadedBackbone

    spec = REGISTRY["vgg16"]
    model = torch.nn.Module()  # VGG16's convolutional part only (the trunk): quick to build
    model.features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    return RetrievalNet(LoadedBackbone(spec, model, "random", None).eval(), Pooling("gem"),
                        scales=MULTISCALE)


@pytest.mark.parametrize("hw", [(1, 64), (64, 1), (2, 64), (3, 31), (15, 15)])
def test_thin_and_tiny_images_are_described(hw):
    """1-px-thin images failed in F.interpolate with multi-scale, and VGG16 under 16 px."""
    h, w = hw
    x = torch.randint(0, 256, (2, 3, h, w), generator=torch.Generator().manual_seed(2),
                      dtype=torch.uint8)
    for net in (RetrievalNet(load_backbone("tiny"), Pooling("gem"), scales=MULTISCALE),
                RetrievalNet(load_backbone("tiny"), Pooling("rmac"))):
        out = infer(net.describe, x, torch.device("cpu"))
        assert out.shape == (2, 64) and np.isfinite(out).all()
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
        assert not np.allclose(out[0], out[1])  # the content still counts


def test_vgg16_describes_a_short_side_under_16_px():
    net = _vgg16_random()
    x = torch.randint(0, 256, (1, 3, 3, 100), generator=torch.Generator().manual_seed(3),
                      dtype=torch.uint8)
    out = infer(net.describe, x, torch.device("cpu"))
    assert out.shape == (1, 512) and np.isfinite(out).all()


def test_images_of_a_usual_size_are_not_padded():
    net = RetrievalNet(load_backbone("tiny"), Pooling("gem"), scales=MULTISCALE)
    x = _batch(1, 64, 48)
    assert net.normalise(x).shape == (1, 3, 64, 48)
