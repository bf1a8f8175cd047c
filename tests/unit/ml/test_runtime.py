"""The runtimes: OpenVINO gives torch's descriptors, is cached by the model's identity, and any
failure (no package, a failed conversion, a full disk, a batch it cannot run) means torch."""

from __future__ import annotations

import errno
import gc
import logging
import signal
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml import openvino_trunk
from imgsearch_gui.ml.backbones import REGISTRY, DeferredBackbone, load_backbone
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.runtime import TorchTrunk

TINY = EmbedderConfig(backbone="tiny", size=64, pooling="rmac", batch_size=4, workers=2)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache dir, and no conversion remembered from earlier tests in this process."""
    monkeypatch.setenv("IMGSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(openvino_trunk, "_models", {})
    return tmp_path / "cache"


def _photos(photo_factory, n: int = 12):
    sizes = [(96, 72), (72, 96), (80, 80), (100, 41)]
    return [photo_factory(f"p{i:02d}.png", i, sizes[i % len(sizes)]) for i in range(n)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("pooling", ["rmac", "gem", "mac", "crow"])
def test_openvino_gives_torchs_descriptors(cache, photo_factory, pooling):
    paths = _photos(photo_factory)
    config = replace(TINY, pooling=pooling)
    ov = load_embedder(replace(config, runtime="openvino"))
    pt = load_embedder(replace(config, runtime="torch"))
    assert (ov.runtime, pt.runtime) == ("openvino", "torch")
    assert ov.meta == pt.meta  # one index serves both
    a = np.stack([r.vector for r in ov.embed_files(paths)])
    b = np.stack([r.vector for r in pt.embed_files(paths)])
    assert _cosines(a, b).min() >= 0.9999


def test_auto_is_openvino_on_the_cpu_and_torch_when_asked(cache):
    assert load_embedder(TINY).runtime == "openvino"
    assert isinstance(load_embedder(replace(TINY, runtime="torch")).trunk, TorchTrunk)


def test_a_shape_seen_often_gets_its_own_compiled_model_with_the_same_results(cache, photo_factory):
    emb = load_embedder(replace(TINY, runtime="openvino", batch_size=4))
    paths = [photo_factory(f"s{i:02d}.png", i, (96, 72)) for i in range(openvino_trunk.STATIC_AFTER + 8)]
    first = emb.embed_path(paths[0])  # the dynamic model
    assert emb.trunk.static_shapes == []
    vectors = np.stack([r.vector for r in emb.embed_files(paths)])
    assert emb.trunk.static_shapes == [(48, 64)]  # 96x72 at longest side 64
    assert float(vectors[0] @ first) >= 0.9999
    torch_vectors = np.stack([r.vector for r in load_embedder(replace(TINY, runtime="torch"))
                              .embed_files(paths)])
    assert _cosines(vectors, torch_vectors).min() >= 0.9999


def test_the_conversion_is_cached_by_the_weights_and_reused(cache, monkeypatch, tmp_path):
    load_embedder(replace(TINY, runtime="openvino"))
    folders = sorted(p.name for p in (cache / "openvino").iterdir())
    assert len(folders) == 1 and folders[0].startswith("tiny-")
    assert not [p for p in (cache / "openvino").rglob("*") if p.name.startswith(".")]  # no temp left

    # a new process (nothing remembered) reads the cache: no conversion, no torch model built
    monkeypatch.setattr(openvino_trunk, "_models", {})
    monkeypatch.setattr(openvino_trunk, "convert", _must_not_run)
    again = load_embedder(replace(TINY, runtime="openvino"))
    assert again.runtime == "openvino"
    assert isinstance(again.backbone, DeferredBackbone) and not again.backbone._built

    # other weights (a fine-tuned file) are another model: converted anew, under another key
    monkeypatch.undo()
    monkeypatch.setenv("IMGSEARCH_CACHE_DIR", str(cache))
    weights = tmp_path / "tuned.pt"
    state = load_backbone("tiny").model.state_dict()
    torch.save({k: v + 0.01 for k, v in state.items()}, weights)
    tuned = load_embedder(replace(TINY, runtime="openvino", weights=str(weights)))
    assert tuned.runtime == "openvino" and tuned.meta.weights_id != again.meta.weights_id
    assert len(list((cache / "openvino").iterdir())) == 2


def _must_not_run(*_args, **_kwargs):
    raise AssertionError("converted again although the cache has the model")


def test_identify_gives_the_id_building_gives():
    for name in ("tiny", "efficientnet_lite0"):
        assert REGISTRY[name].identify(None) == load_backbone(name).weights_id


def test_torchvision_file_names_are_torchvisions():
    import torchvision

    from imgsearch_gui.ml.backbones import TORCHVISION_FILES

    for enum, filename in TORCHVISION_FILES.items():
        assert getattr(torchvision.models, enum).IMAGENET1K_V1.url.endswith("/" + filename)


def test_no_openvino_package_means_torch_with_one_log_line(cache, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    monkeypatch.delitem(sys.modules, "imgsearch_gui.ml.openvino_trunk")
    with caplog.at_level(logging.WARNING):
        emb = load_embedder(replace(TINY, runtime="openvino"))
    assert emb.runtime == "torch"
    lines = [r for r in caplog.records if "OpenVINO is not used" in r.getMessage()]
    assert len(lines) == 1, caplog.text


def test_a_failed_conversion_means_torch(cache, monkeypatch, caplog):
    def broken(_backbone):
        raise openvino_trunk.ExportMismatchError("feature maps at cosine 0.5 of torch's")

    monkeypatch.setattr(openvino_trunk, "convert", broken)
    with caplog.at_level(logging.WARNING):
        emb = load_embedder(replace(TINY, runtime="openvino"))
    assert emb.runtime == "torch" and "cosine 0.5" in caplog.text
    assert not (cache / "openvino").exists() or not list((cache / "openvino").iterdir())


def test_a_mismatching_conversion_is_refused():
    with pytest.raises(openvino_trunk.ExportMismatchError):
        openvino_trunk.check_same(np.ones((2, 4, 3, 3)), -np.ones((2, 4, 3, 3)))
    with pytest.raises(openvino_trunk.ExportMismatchError):
        openvino_trunk.check_same(np.ones((2, 4, 3, 3)), np.ones((2, 4, 3, 2)))
    openvino_trunk.check_same(np.ones((2, 4, 3, 3)), np.ones((2, 4, 3, 3)) * 1.01)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("basic_ios::clear: iostream error")])  # OpenVINO's
def test_a_full_disk_only_costs_the_cache(cache, monkeypatch, caplog, photo_factory, error):
    def full(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(openvino_trunk.ov, "save_model", full)
    with caplog.at_level(logging.WARNING):
        emb = load_embedder(replace(TINY, runtime="openvino"))
    assert emb.runtime == "openvino" and "could not cache" in caplog.text
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing half-written
    assert emb.embed_path(photo_factory("a.png", 1)).shape == (64,)


def test_a_cache_dir_that_cannot_be_made_still_runs_openvino(monkeypatch, photo_factory, caplog):
    monkeypatch.setenv("IMGSEARCH_CACHE_DIR", "/proc/no-such-dir/cache")  # mkdir fails
    monkeypatch.setattr(openvino_trunk, "_models", {})
    with caplog.at_level(logging.WARNING):
        emb = load_embedder(replace(TINY, runtime="openvino"))
    assert emb.runtime == "openvino" and "converted each run" in caplog.text
    assert emb.embed_path(photo_factory("a.png", 2)).shape == (64,)


def test_the_cache_key_changes_with_the_code_that_defines_the_network(monkeypatch):
    backbone = load_backbone("tiny")
    before = openvino_trunk.model_key(backbone)
    real = openvino_trunk._version
    monkeypatch.setattr(openvino_trunk, "_version",
                        lambda pkg: "9.9" if pkg == "timm" else real(pkg))
    assert openvino_trunk.model_key(backbone) != before


def test_a_batch_failure_is_logged_once_with_its_reason(cache, monkeypatch, photo_factory, caplog):
    emb = load_embedder(replace(TINY, runtime="openvino"))

    def fail(*_args):
        raise RuntimeError("simulated OpenVINO failure")

    monkeypatch.setattr(emb.trunk, "_run", fail)
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            emb.embed_path(photo_factory(f"f{i}.png", i))
    assert len([r for r in caplog.records if "torch runs it" in r.getMessage()]) == 1


def test_a_damaged_cache_entry_is_converted_again(cache, monkeypatch):
    load_embedder(replace(TINY, runtime="openvino"))
    (xml,) = (cache / "openvino").rglob("model.xml")
    xml.write_text("<not a model")
    monkeypatch.setattr(openvino_trunk, "_models", {})
    assert load_embedder(replace(TINY, runtime="openvino")).runtime == "openvino"
    assert xml.read_text().startswith("<?xml")


def test_a_batch_openvino_fails_on_runs_in_torch(cache, monkeypatch, photo_factory, caplog):
    load_embedder(replace(TINY, runtime="openvino"))  # cached: the next one defers torch
    monkeypatch.setattr(openvino_trunk, "_models", {})
    emb = load_embedder(replace(TINY, runtime="openvino"))
    assert isinstance(emb.backbone, DeferredBackbone) and not emb.backbone._built
    path = photo_factory("a.png", 3)
    expected = load_embedder(replace(TINY, runtime="torch")).embed_path(path)

    def fail(*_args):
        raise RuntimeError("simulated OpenVINO failure")

    monkeypatch.setattr(emb.trunk, "_run", fail)
    with caplog.at_level(logging.WARNING):
        got = emb.embed_path(path)
    assert float(got @ expected) >= 0.9999 and "torch runs it" in caplog.text
    assert emb.backbone._built  # torch's copy was built when it was needed


def test_two_threads_embed_at_once(cache, photo_factory):
    emb = load_embedder(replace(TINY, runtime="openvino"))
    paths = _photos(photo_factory, 8)
    expected = np.stack([emb.embed_path(p) for p in paths])
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        if k == 1:
            torch.set_num_threads(1)  # the GUI's query thread: its own compiled model
        results[k] = np.stack([emb.embed_path(p) for p in paths * 2])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert _cosines(results[k], np.concatenate([expected, expected])).min() >= 0.9999


def test_a_layer_cut_backbone_is_either_converted_right_or_left_to_torch(cache, photo_factory):
    config = replace(TINY, layer="2")  # the tiny net's second convolution (32 channels)
    ov = load_embedder(replace(config, runtime="openvino"))
    pt = load_embedder(replace(config, runtime="torch"))
    assert ov.meta.dim == pt.meta.dim == 32
    path = photo_factory("a.png", 5)
    assert float(ov.embed_path(path) @ pt.embed_path(path)) >= 0.9999


@pytest.mark.slow
def test_the_bundled_model_in_openvino_matches_torch_on_real_photos(cache, real_photos):
    ov = load_embedder(EmbedderConfig(runtime="openvino", size=256))
    pt = load_embedder(EmbedderConfig(runtime="torch", size=256))
    assert ov.runtime == "openvino"
    images = list(real_photos.values())
    a = np.stack([ov.embed_image(im) for im in images])
    b = np.stack([pt.embed_image(im) for im in images])
    assert _cosines(a, b).min() >= 0.9999


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
def test_a_model_compiled_here_and_freed_elsewhere_leaves_this_threads_signal_stack(cache):
    """OpenVINO gives a compiling thread its own signal stack and restores it wherever the model
    is freed: left so, the main thread's stack pointed at freed memory and Ctrl-C crashed."""
    import ctypes
    import faulthandler
    import os

    libc = ctypes.CDLL(None)

    def stack() -> tuple[int, int]:
        state = openvino_trunk._SignalStack()
        libc.sigaltstack(None, ctypes.byref(state))
        return state.ss_sp or 0, state.ss_size

    faulthandler.enable()  # a signal stack of Python's own, as the apps have
    before = stack()
    holder = {"emb": load_embedder(replace(TINY, runtime="openvino"))}
    holder["emb"].embed_image(Image.new("RGB", (64, 48), "gray"))
    assert stack() == before

    def free() -> None:
        holder.clear()
        gc.collect()

    worker = threading.Thread(target=free)
    worker.start()
    worker.join()
    assert stack() == before
    got = []
    previous = signal.signal(signal.SIGINT, lambda *_: got.append(True))
    try:
        os.kill(os.getpid(), signal.SIGINT)  # crashed the process before the fix
    finally:
        signal.signal(signal.SIGINT, previous)
    assert got == [True]


def test_only_the_most_recent_shapes_keep_a_compiled_model(cache, monkeypatch, photo_factory):
    monkeypatch.setattr(openvino_trunk, "STATIC_AFTER", 1)
    monkeypatch.setattr(openvino_trunk, "MAX_STATIC", 2)
    emb = load_embedder(replace(TINY, runtime="openvino"))
    torch_emb = load_embedder(replace(TINY, runtime="torch"))
    shapes = [(96, 72), (72, 96), (80, 80)]
    paths = [photo_factory(f"e{i}.png", i, size) for i, size in enumerate(shapes)]
    for path in paths:
        assert float(emb.embed_path(path) @ torch_emb.embed_path(path)) >= 0.9999
    assert emb.trunk.static_shapes == [(64, 48), (64, 64)]  # 72x96, 80x80 (HxW at 64 px); 96x72 dropped
    assert float(emb.embed_path(paths[0]) @ torch_emb.embed_path(paths[0])) >= 0.9999
