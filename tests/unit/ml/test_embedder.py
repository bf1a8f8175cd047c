from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import ImageError
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.ml.embedder import load_embedder, resize_longest


@pytest.fixture(scope="module")
def tiny():
    return load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="gem", batch_size=4,
                                        workers=2))


def test_resize_keeps_aspect_ratio():
    assert resize_longest(Image.new("RGB", (400, 300)), 200).size == (200, 150)
    assert resize_longest(Image.new("RGB", (30, 60)), 120).size == (60, 120)


def test_default_is_the_measured_best():
    # bench/pooling_map.py: R-MAC at 384 px has the best flowers17 mAP (58.0).
    assert (EmbedderConfig().backbone, EmbedderConfig().pooling, EmbedderConfig().size) == (
        "efficientnet_lite0", "rmac", 384)


def test_meta_describes_the_descriptor(tiny):
    meta = tiny.meta
    assert (meta.backbone, meta.pooling, meta.input_size, meta.dim) == ("tiny", "gem", 64, 64)
    assert dict(meta.pooling_params) == {"p": 3.0}
    assert meta.fingerprint == load_embedder(tiny.config).meta.fingerprint
    other = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="mac"))
    assert other.meta.fingerprint != meta.fingerprint


def test_embed_image_is_unit_float32(tiny, photo_factory):
    vec = tiny.embed_path(photo_factory("a.png", 1))
    assert vec.dtype == np.float32 and vec.shape == (64,)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_embed_files_keeps_order_and_reports_bad_files(tiny, photo_factory, tmp_path):
    paths = []
    for i in range(11):
        size = (96, 72) if i % 3 else (72, 96)  # two shapes interleaved
        paths.append(photo_factory(f"p{i:02d}.png", i, size))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    paths.insert(5, bad)
    results = list(tiny.embed_files(paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert results[5].vector is None and "not an image" in results[5].error
    # Batched results equal one-at-a-time results.
    for r in results:
        if r.vector is not None:
            assert np.allclose(r.vector, tiny.embed_path(r.path), atol=1e-5)


def test_embed_files_honours_cancel(tiny, photo_factory):
    paths = [photo_factory(f"c{i}.png", i) for i in range(40)]
    token = CancelToken()
    seen = 0
    for _ in tiny.embed_files(paths, cancel=token):
        seen += 1
        token.cancel()
    assert seen < 40


def test_embed_path_raises_image_error(tiny, tmp_path):
    p = tmp_path / "zero.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError):
        tiny.embed_path(p)


def test_multiscale_differs_and_is_normalised(photo_factory):
    single = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="gem"))
    multi = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="gem", multiscale=True))
    p = photo_factory("m.png", 3)
    a, b = single.embed_path(p), multi.embed_path(p)
    assert multi.meta.scales == pytest.approx((1.0, 2**-0.5, 0.5))
    assert np.linalg.norm(b) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(a, b)


def test_layer_changes_dim():
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, layer="2"))
    assert emb.meta.dim == 32 and emb.meta.layer == "2"
    assert emb.embed_image(Image.new("RGB", (50, 40), (10, 200, 30))).shape == (32,)


@pytest.mark.parametrize("pooling", ["mac", "sum", "spoc", "gem", "rmac", "crow"])
def test_every_pooling_embeds(pooling, photo_factory):
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling=pooling))
    vec = emb.embed_path(photo_factory("x.png", 7))
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_unknown_pooling_rejected():
    with pytest.raises(ValueError, match="unknown pooling"):
        load_embedder(EmbedderConfig(backbone="tiny", pooling="median"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("pooling", ["gem", "rmac", "mac", "crow"])
def test_cuda_matches_cpu_under_autocast(pooling, real_photos):
    cpu = load_embedder(EmbedderConfig(pooling=pooling, device="cpu"))
    gpu = load_embedder(EmbedderConfig(pooling=pooling, device="cuda"))
    for image in real_photos.values():
        a, b = cpu.embed_image(image), gpu.embed_image(image)
        assert float(a @ b) > 0.995


def test_whitening_is_part_of_the_model(tmp_path, photo_factory):
    from imgsearch_gui.ml.whitening import learn_pca_whitening

    plain = load_embedder(EmbedderConfig(backbone="tiny", size=64))
    vecs = np.stack([plain.embed_path(photo_factory(f"w{i}.png", i)) for i in range(20)])
    path = learn_pca_whitening(vecs, dim=10).save(tmp_path / "w.npz")
    white = plain.with_whitening(path)
    assert white.meta.dim == 10 and white.meta.whitening_id.startswith("pcaw10-")
    assert white.meta.fingerprint != plain.meta.fingerprint
    v = white.embed_path(tmp_path / "w3.png")
    assert v.shape == (10,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="expects 64-d"):
        load_embedder(EmbedderConfig(backbone="tiny", size=64, layer="2", whitening=str(path)))


def test_a_failing_batch_does_not_fail_its_neighbours(photo_factory, tmp_path, monkeypatch):
    """An inference error (here injected for one all-black image, as a trunk that cannot take a
    shape would raise) skips that file with the reason; the others of its batch are embedded."""
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, batch_size=8, workers=1))
    paths = [photo_factory(f"n{i}.png", i, (96, 72)) for i in range(5)]
    black = tmp_path / "black.png"
    Image.new("RGB", (96, 72)).save(black)
    paths.insert(2, black)
    real = emb.embed_batch

    def embed_batch(batch: torch.Tensor) -> np.ndarray:
        if (batch.flatten(1).amax(dim=1) == 0).any():
            raise RuntimeError("Calculated output size: (128x0x25). Output size is too small")
        return real(batch)

    monkeypatch.setattr(emb, "embed_batch", embed_batch)
    results = list(emb.embed_files(paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert results[2].vector is None and "Output size is too small" in results[2].error
    for r in results[:2] + results[3:]:
        assert r.error is None and np.allclose(r.vector, real(emb._decode(r.path)[None])[0], atol=1e-5)


def test_thin_photos_embed_with_multiscale(tmp_path):
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, multiscale=True, workers=1))
    paths = []
    for i, size in enumerate([(1, 2000), (2000, 1), (3, 1000), (1, 1)]):
        rng = np.random.default_rng(i)
        paths.append(tmp_path / f"thin{i}.png")
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(paths[-1])
    results = list(emb.embed_files(paths))
    assert [r.error for r in results] == [None] * 4
    assert all(np.isfinite(r.vector).all() for r in results)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA cannot run")
def test_a_cuda_device_that_cannot_run_the_model_is_a_user_error(monkeypatch):
    from imgsearch_gui.base.errors import DeviceUnavailableError
    from imgsearch_gui.ml import embedder as embedder_mod

    monkeypatch.setattr(embedder_mod, "resolve_device", lambda _name: torch.device("cuda"))
    with pytest.raises(DeviceUnavailableError, match="CUDA GPU cannot run the model"):
        embedder_mod.load_embedder(EmbedderConfig(backbone="tiny", size=64, device="cuda"))
