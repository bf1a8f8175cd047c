"""Fine-tuning on a tiny generated labelled folder with the tiny backbone (CPU, seconds)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import FinetuneError
from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ml import backbones
from imgsearch_gui.ml.checkpoint import list_checkpoints, load_checkpoint
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.finetune import (
    DataReady,
    EpochEnd,
    FinetuneConfig,
    FinetuneResult,
    TrainStep,
    balanced_batches,
    contrastive_loss,
    finetune,
    freeze_batchnorm,
    inspect_folder,
    run_to_end,
    scan_folder,
    split_per_class,
    triplet_loss,
)
from imgsearch_gui.ml.finetune.loop import lr_at

PATTERNS = ("hstripes", "vstripes", "checks", "rings")


def pattern_image(kind: str, seed: int, size: tuple[int, int] = (72, 56)) -> Image.Image:
    """Classes differ by texture (orientation/shape); period, phase, colours and noise vary
    per image, so the random tiny CNN separates them only partly before training."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(10, 18)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "hstripes":
        v = np.sin(yy * 2 * np.pi / period + phase)
    elif kind == "vstripes":
        v = np.sin(xx * 2 * np.pi / period + phase)
    elif kind == "checks":
        v = np.sin(xx * 2 * np.pi / period + phase) * np.sin(yy * 2 * np.pi / period)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        v = np.sin(np.hypot(xx - cx, yy - cy) * 2 * np.pi / period + phase)
    a = np.clip(np.array([40.0, 60.0, 200.0]) + rng.uniform(-80, 80, 3), 0, 255)
    b = np.clip(np.array([230.0, 200.0, 40.0]) + rng.uniform(-80, 80, 3), 0, 255)
    img = a + (b - a) * ((v[..., None] + 1) / 2) + rng.normal(0, 20, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_labelled(root: Path, per_class: int = 16, classes=PATTERNS, seed: int = 0) -> Path:
    for c, kind in enumerate(classes):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pattern_image(kind, seed * 10_000 + c * 1000 + i).save(folder / f"{kind}_{i:02d}.png")
    return root


TINY = dict(backbone="tiny", size=64, batch_size=16, lr=3e-3, workers=1, patience=0)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    root = make_labelled(tmp_path_factory.mktemp("labelled") / "patterns")
    (root / "rings" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (root / "checks" / "empty.png").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory):
    """One short classification run, shared: (events, result, models dir)."""
    models = tmp_path_factory.mktemp("models")
    config = FinetuneConfig(**TINY, epochs=3, head_epochs=1, val_fraction=0.5, name="tiny-ft")
    events = list(finetune(labelled, config, models))
    return events, events[-1], models


# -- data checks ---------------------------------------------------------------------------------


def test_bad_files_listed_and_excluded(trained):
    events, result, _ = trained
    ready = next(e for e in events if isinstance(e, DataReady))
    bad = {Path(b.path).name: b.reason for b in ready.summary.bad_files}
    assert set(bad) == {"broken.jpg", "empty.png"}
    assert "empty" in bad["empty.png"]
    assert ready.summary.n_train + ready.summary.n_val == 4 * 16
    assert [c.name for c in ready.summary.classes] == sorted(PATTERNS)
    assert all(c.train == 8 and c.val == 8 for c in ready.summary.classes)


def test_split_is_per_class_seeded_and_disjoint():
    items = [(i, "a" if i < 10 else "b") for i in range(30)]
    train, val = split_per_class(items, 0.2, seed=1)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(30))
    assert sum(1 for i in val if i < 10) == 2 and sum(1 for i in val if i >= 10) == 4
    assert split_per_class(items, 0.2, seed=1) == (train, val)
    assert split_per_class(items, 0.2, seed=2) != (train, val)
    # two images: one each side
    assert split_per_class([(0, "a"), (1, "a")], 0.9, seed=0) in (([0], [1]), ([1], [0]))


def test_given_train_validation_layout_is_used(tmp_path):
    make_labelled(tmp_path / "ds" / "train", per_class=3, classes=PATTERNS[:2])
    make_labelled(tmp_path / "ds" / "validation", per_class=2, classes=PATTERNS[:2], seed=1)
    make_labelled(tmp_path / "ds" / "test", per_class=2, classes=PATTERNS[:2], seed=2)
    scan = scan_folder(tmp_path / "ds")
    assert scan.given_split and scan.classes == ("hstripes", "vstripes")
    assert scan.counts() == {"hstripes": (3, 2), "vstripes": (3, 2)}
    assert not any(p.relative_to(tmp_path / "ds").parts[0] == "test" for p in scan.paths)


def _error(root: Path) -> str:
    with pytest.raises(FinetuneError) as info:
        run_to_end(finetune(root, FinetuneConfig(**TINY, epochs=1)))
    return str(info.value)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    assert "no usable images" in _error(tmp_path / "empty")


def test_single_class_is_an_error(tmp_path):
    make_labelled(tmp_path / "one", per_class=4, classes=PATTERNS[:1])
    assert "only one class" in _error(tmp_path / "one")


def test_class_with_one_image_is_an_error(tmp_path):
    root = make_labelled(tmp_path / "few", per_class=4, classes=PATTERNS[:2])
    (root / "lonely").mkdir()
    pattern_image("rings", 5).save(root / "lonely" / "only.png")
    assert "lonely (1)" in _error(root)


def test_class_left_with_one_readable_image_is_an_error(tmp_path):
    root = make_labelled(tmp_path / "bad", per_class=4, classes=PATTERNS[:2])
    (root / "broken").mkdir()
    pattern_image("rings", 5).save(root / "broken" / "good.png")
    (root / "broken" / "bad.png").write_bytes(b"garbage")
    msg = _error(root)
    assert "at least 2 images" in msg and "broken" in msg


def test_missing_folder_and_bad_settings(tmp_path):
    assert "not a folder" in _error(tmp_path / "nope")
    with pytest.raises(FinetuneError, match="val-fraction"):
        FinetuneConfig(val_fraction=1.0).checked()
    with pytest.raises(FinetuneError, match="unknown loss"):
        FinetuneConfig(loss="arcface").checked()


# -- training ------------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_raises_val_map(trained):
    events, result, models = trained
    assert isinstance(result, FinetuneResult) and not result.cancelled
    steps = [e for e in events if isinstance(e, TrainStep)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.stage for e in epochs] == ["head", "full", "full", "full"]
    assert epochs[-1].loss < epochs[0].loss
    assert steps and all(s.images_per_s > 0 and math.isfinite(s.loss) for s in steps)
    assert 0 <= result.map_before <= 1 and 0 <= result.map_after <= 1
    assert result.map_after > result.map_before + 0.05, (result.map_before, result.map_after)
    assert result.map_after == max(e.val_map for e in epochs)
    # Epochs count within their stage: the classifier's warm-up, then the 3 full epochs as set.
    assert [(e.stage, e.epoch, e.epochs) for e in result.history] == [
        ("head", 1, 1), ("full", 1, 3), ("full", 2, 3), ("full", 3, 3)]
    assert [e.run_epoch for e in result.history] == [1, 2, 3, 4]
    assert result.improved and result.best is not None and result.best.val_map == result.map_after
    assert result.seconds > 0 and result.checkpoint == str(models / "tiny-ft.pt")


def test_checkpoint_carries_metadata_and_reloads_to_identical_embeddings(trained, labelled):
    _, result, models = trained
    assert list_checkpoints(models) == [Path(result.checkpoint)]
    ckpt = load_checkpoint(result.checkpoint)
    assert (ckpt.backbone, ckpt.pooling, ckpt.size) == ("tiny", "gem", 64)
    assert ckpt.pooling_params["p"] == pytest.approx(result.pooling_params["p"])
    assert ckpt.pooling_params["p"] != pytest.approx(3.0, abs=1e-6)  # p was learned
    info = ckpt.info
    assert info["metrics"]["map_after"] == pytest.approx(result.map_after)
    assert info["metrics"]["map_before"] == pytest.approx(result.map_before)
    assert info["data"]["classes"]["rings"] == {"train": 8, "val": 8}
    assert info["data"]["split"] == "random" and len(info["data"]["bad_files"]) == 2
    assert info["recipe"]["loss"] == "classification"
    # Same layout as the backbone's own model: load_backbone takes it directly.
    reference = backbones.load_backbone("tiny")
    assert set(ckpt.state_dict) == set(reference.model.state_dict())
    changed = backbones.load_backbone("tiny", weights=result.checkpoint)
    assert any(not torch.equal(a, b) for a, b in zip(changed.model.state_dict().values(),
                                                     reference.model.state_dict().values(),
                                                     strict=True))
    # Reload twice through the app's embedder: identical embeddings, p from the checkpoint.
    config = EmbedderConfig(backbone="tiny", pooling="gem", size=64, weights=result.checkpoint)
    a, b = load_embedder(config), load_embedder(config)
    assert dict(a.meta.pooling_params)["p"] == pytest.approx(ckpt.pooling_params["p"])
    photo = sorted((labelled / "rings").glob("*.png"))[0]
    np.testing.assert_array_equal(a.embed_path(photo), b.embed_path(photo))
    plain = load_embedder(EmbedderConfig(backbone="tiny", pooling="gem", size=64))
    assert not np.allclose(a.embed_path(photo), plain.embed_path(photo))


def test_finetuned_val_map_is_what_the_embedder_gives(trained, labelled):
    """map_after is measured on exactly the app's preprocessing: recompute it via the Embedder."""
    from imgsearch_gui.ml.evaluate import label_retrieval

    events, result, _ = trained
    ready = next(e for e in events if isinstance(e, DataReady))
    scan = scan_folder(labelled)
    good = [(p, c) for p, c in scan.train if p.name not in ("broken.jpg", "empty.png")]
    _, val = split_per_class(list(enumerate(c for _, c in good)), 0.5, ready.summary.seed)
    emb = load_embedder(EmbedderConfig(backbone="tiny", pooling="gem", size=64,
                                       weights=result.checkpoint))
    vecs = np.stack([r.vector for r in emb.embed_files([good[i][0] for i in val])])
    got = label_retrieval(vecs, [good[i][1] for i in val]).map
    assert got == pytest.approx(result.map_after, abs=1e-4)


@pytest.mark.parametrize("loss", ["triplet", "contrastive"])
def test_metric_learning_losses_train(labelled, loss):
    config = FinetuneConfig(**TINY, loss=loss, epochs=3, val_fraction=0.5)
    events = list(finetune(labelled, config, None))
    result = events[-1]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.stage for e in epochs] == ["full"] * 3  # no head stage without a classifier
    assert result.checkpoint is None and not result.cancelled
    assert all(math.isfinite(e.loss) for e in epochs)
    assert result.map_after > result.map_before


def test_cancel_mid_epoch_leaves_no_checkpoint(labelled, tmp_path):
    token = CancelToken()
    models = tmp_path / "models"
    events = []
    for event in finetune(labelled, FinetuneConfig(**TINY, epochs=2, val_fraction=0.5),
                          models, cancel=token):
        events.append(event)
        if isinstance(event, TrainStep) and event.step == 2:
            token.cancel()
    result = events[-1]
    assert isinstance(result, FinetuneResult) and result.cancelled and result.checkpoint is None
    assert not any(isinstance(e, EpochEnd) for e in events)
    assert not models.exists() or list(models.iterdir()) == []


def test_cancel_while_decoding(labelled, tmp_path):
    token = CancelToken()
    events = []
    for event in finetune(labelled, FinetuneConfig(**TINY, epochs=1), tmp_path, cancel=token):
        events.append(event)
        if isinstance(event, Progress) and event.stage == "load":
            token.cancel()
    assert events[-1].cancelled and list(tmp_path.iterdir()) == []


def _tiny_bn_build(weights, _download):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    if weights is not None:
        model.load_state_dict(backbones._load_state(weights))
    return model, "tiny-bn"


def test_batchnorm_stays_in_eval_mode_while_training(labelled, monkeypatch):
    spec = backbones.BackboneSpec("tiny_bn", "test", 16, backbones.IMAGENET_MEAN,
                                  backbones.IMAGENET_STD, _tiny_bn_build, backbones._identity,
                                  hidden=True)
    monkeypatch.setitem(backbones.REGISTRY, "tiny_bn", spec)
    seen: list[bool] = []
    original = nn.BatchNorm2d.forward

    def spy(self, x):
        if torch.is_grad_enabled():
            seen.append(self.training)
        return original(self, x)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", spy)
    config = FinetuneConfig(**{**TINY, "backbone": "tiny_bn"}, epochs=1, head_epochs=0,
                            val_fraction=0.5)
    events = []
    gen = finetune(labelled, config, None)
    for event in gen:
        events.append(event)
        if isinstance(event, TrainStep) and event.step == 2:
            running = events  # stop early: two steps are enough
            break
    gen.close()
    assert running and seen and not any(seen)  # gradients flowed, BN never in train mode
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 3)).train()
    assert freeze_batchnorm(model) == 1 and not model[0].training and model[1].training


# -- pieces --------------------------------------------------------------------------------------


def test_balanced_batches_sample_classes_equally():
    labels = [0] * 50 + [1] * 5 + [2] * 5
    batches = balanced_batches(labels, 6, 30, per_class=2, rng=random.Random(0))
    counts = np.bincount([labels[i] for b in batches for i in b], minlength=3)
    assert all(len(b) == 6 for b in batches)
    assert counts.min() == counts.max()  # balanced despite 10:1 imbalance
    assert set(i for b in batches for i in b if labels[i] == 1) == set(range(50, 55))


def test_triplet_loss_averages_the_triplets_that_violate_the_margin():
    # anchors 0 and 1 (class 0) with one hard negative (2) and one easy one (3)
    desc = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0, 0], [1.0, 0.3, 0], [1.0, 0.1, 0.1], [0, 0, 1.0]]), dim=1)
    y = torch.tensor([0, 0, 1, 2])
    d = torch.cdist(desc, desc).pow(2)
    violating = [0.1 + d[a, p] - d[a, n] for a, p in ((0, 1), (1, 0)) for n in (2, 3)]
    violating = [v for v in violating if v > 0]
    assert violating and len(violating) < 4  # the easy negative violates nothing
    expected = sum(violating) / len(violating)
    assert triplet_loss(desc, y, 0.1).item() == pytest.approx(float(expected), rel=1e-5)


def test_losses_are_zero_when_classes_are_well_separated():
    desc = torch.nn.functional.normalize(torch.eye(4)[[0, 0, 1, 1]] + 0.01, dim=1)
    y = torch.tensor([0, 0, 1, 1])
    assert triplet_loss(desc, y, 0.1).item() == pytest.approx(0, abs=1e-6)
    assert contrastive_loss(desc, y, 0.7).item() == pytest.approx(0, abs=1e-4)
    mixed = desc[[0, 2, 1, 3]]
    assert triplet_loss(mixed, y, 0.1).item() > 1
    assert contrastive_loss(mixed, y, 0.7).item() > 0.5


def test_lr_warms_up_then_decays_to_one_percent():
    lrs = [lr_at(step, 20, 1.0, warmup=4) for step in range(20)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lr_at(20, 20, 1.0, 4) == pytest.approx(0.01) and lr_at(99, 20, 1.0, 4) == pytest.approx(0.01)


def test_inspect_folder_reports_usable_counts_and_bad_files(labelled):
    events = list(inspect_folder(labelled, workers=1))
    report = events[-1]
    assert all(isinstance(e, Progress) and e.stage == "load" for e in events[:-1])
    assert report.counts == {c: (16, 0) for c in sorted(PATTERNS)}
    assert {Path(b.path).name for b in report.bad_files} == {"broken.jpg", "empty.png"}
    assert report.error is None and not report.given_split


def test_inspect_folder_says_what_training_would_refuse(tmp_path):
    make_labelled(tmp_path / "one", per_class=3, classes=PATTERNS[:1])
    report = list(inspect_folder(tmp_path / "one", workers=1))[-1]
    assert report.counts == {"hstripes": (3, 0)} and "only one class" in report.error
    assert "not a folder" in list(inspect_folder(tmp_path / "missing"))[-1].error


# -- stopping, and runs that beat nothing --------------------------------------------------------


def scripted_val_map(monkeypatch, values):
    """Model.val_map returns ``values`` in turn (first: the off-the-shelf model), so the stopping
    rules are tested on chosen curves rather than on what a tiny net happens to learn."""
    from imgsearch_gui.ml.finetune import loop

    queue = list(values)
    monkeypatch.setattr(loop.Model, "val_map", lambda self, data: queue.pop(0))
    return queue


def test_warm_up_and_early_dip_never_end_the_run(labelled, monkeypatch):
    """The reviewers' bird curve: the warm-up ties the baseline, the first full epochs dip; the
    old rule (patience 2, warm-up counted) stopped after the first full epoch."""
    left = scripted_val_map(monkeypatch, [0.864, 0.864, 0.83, 0.85, 0.90, 0.92, 0.91])
    config = FinetuneConfig(**{**TINY, "patience": 2}, epochs=5, head_epochs=1, val_fraction=0.5)
    result = run_to_end(finetune(labelled, config, None))
    assert not left and not result.stopped_early
    assert result.improved and result.map_after == 0.92
    assert (result.best.stage, result.best.epoch, result.best.epochs) == ("full", 4, 5)


def test_patience_counts_only_after_the_minimum_full_epochs(labelled, monkeypatch):
    # Full epochs 1-2 never count (min_epochs 2); 3 and 4 are bad: the run stops after 4 of 8.
    scripted_val_map(monkeypatch, [0.5, 0.9, 0.8, 0.8, 0.8, 0.8, 0.99, 0.99, 0.99])
    config = FinetuneConfig(**{**TINY, "patience": 2}, loss="triplet", epochs=8, min_epochs=2,
                            val_fraction=0.5)
    result = run_to_end(finetune(labelled, config, None))
    assert result.stopped_early and [h.epoch for h in result.history] == [1, 2, 3, 4]
    assert result.map_after == 0.9 and result.best.epoch == 1
    assert FinetuneConfig(epochs=7).min_full_epochs == 4  # default: half, rounded up


def test_a_run_that_never_beats_the_original_saves_nothing(labelled, tmp_path, monkeypatch):
    scripted_val_map(monkeypatch, [0.8, 0.8, 0.7, 0.79])
    models = tmp_path / "models"
    config = FinetuneConfig(**TINY, epochs=2, head_epochs=1, val_fraction=0.5, whiten=True)
    result = run_to_end(finetune(labelled, config, models))
    assert not result.improved and result.best is None and result.best_epoch == 0
    assert result.checkpoint is None and not models.exists()
    assert result.map_after == result.map_before == 0.8 and result.map_whitened is None
    assert result.to_dict()["improved"] is False


# -- hard negatives from a pool ------------------------------------------------------------------


def test_hardest_negatives_are_the_closest_other_classes_one_per_class():
    from imgsearch_gui.ml.finetune.mining import hardest_negatives

    pool = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [0.95, 0.05]], np.float32)
    labels = [0, 1, 1, 2, 0]
    rows = [10, 11, 12, 13, 14]
    got = hardest_negatives(pool[[0]], [0], pool, labels, rows, negatives=2)
    assert got == [[11, 13]]  # row 12 is class 1 again: the second slot goes to class 2
    assert hardest_negatives(pool[[0]], [0], pool, labels, rows, negatives=5) == [[11, 13]]


def test_pool_holds_every_anchor_and_batches_end_with_their_negatives():
    from imgsearch_gui.ml.finetune.mining import anchors_of, mined_batches, pool_rows

    labels = [0, 0, 1, 1, 2, 2, 3, 3] * 5
    pairs = balanced_batches(labels, 4, 3, per_class=2, rng=random.Random(1))
    anchors = anchors_of(pairs)
    assert anchors == [b[i] for b in pairs for i in (0, 2)]  # the first of every pair
    pool = pool_rows(anchors, len(labels), pool_size=10, rng=random.Random(2))
    assert set(anchors) <= set(pool) and len(pool) == 10
    assert pool_rows(anchors, len(labels), 100, random.Random(0)) == list(range(len(labels)))
    vecs = np.eye(4, dtype=np.float32)[[labels[r] for r in pool]] + 0.01 * np.arange(len(pool))[:, None]
    batches = mined_batches(pairs, labels, pool, vecs, negatives=1)
    for pair_batch, batch in zip(pairs, batches, strict=True):
        assert batch[:4] == pair_batch and len(batch) == 6
        negs = batch[4:]
        assert all(labels[n] != labels[a] for a, n in zip(pair_batch[::2], negs, strict=True))
        assert set(negs) <= set(pool)


def test_metric_loss_batches_carry_mined_negatives(labelled, monkeypatch):
    from imgsearch_gui.ml.finetune import loop

    built = []
    real = loop.mined_batches
    monkeypatch.setattr(loop, "mined_batches", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    config = FinetuneConfig(**TINY, loss="contrastive", epochs=2, val_fraction=0.5, negatives=2)
    events = list(finetune(labelled, config, None))
    assert len(built) == 2  # the pool re-embedded and mined once per epoch
    assert all(len(b) == 16 for batches in built for b in batches)  # 4 pairs + 8 negatives
    mining = [e for e in events if isinstance(e, Progress) and "hard negatives" in (e.message or "")]
    assert len(mining) == 2


# -- the plan and the estimate -------------------------------------------------------------------


def work_done(events) -> tuple[int, int]:
    """(images trained on with the whole network, images through the frozen network) in a run's
    events: the full stage's steps; every embedding pass announced and the head stage's steps."""
    full = sum(e.images for e in events if isinstance(e, TrainStep) and e.stage == "full")
    frozen = sum(e.images for e in events if isinstance(e, TrainStep) and e.stage == "head")
    frozen += sum(e.total for e in events
                  if isinstance(e, Progress) and e.stage == "embed" and e.done == 0)
    return full, frozen


@pytest.mark.parametrize("loss, whiten", [("classification", True), ("contrastive", False)])
def test_the_plan_is_the_work_the_run_does(labelled, loss, whiten):
    from imgsearch_gui.ml.finetune import plan_for, split_sizes

    config = FinetuneConfig(**TINY, loss=loss, epochs=2, head_epochs=1, val_fraction=0.5,
                            epoch_images=16, whiten=whiten, pool_size=20)
    report = list(inspect_folder(labelled, workers=1))[-1]
    n_train, n_val = split_sizes(report.counts, report.given_split, config)
    events = list(finetune(labelled, config, None))
    ready = next(e for e in events if isinstance(e, DataReady))
    assert (n_train, n_val) == (ready.summary.n_train, ready.summary.n_val) == (32, 32)
    plan = plan_for(n_train, n_val, config, n_classes=len(report.counts))
    assert plan == ready.plan
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert plan.steps_per_epoch == 1 == steps[0].steps  # an epoch of 16 of the 32 train images
    assert len(steps) == plan.total_epochs * plan.steps_per_epoch == steps[-1].run_steps
    assert {s.images for s in steps} == {plan.batch_size}
    assert work_done(events) == plan.work()


def test_the_estimate_is_the_plan_at_a_measured_speed(labelled):
    from imgsearch_gui.ml.finetune import Speed, measure_speed, plan_for

    plan = plan_for(320, 100, FinetuneConfig(epochs=3))
    full, frozen = plan.work()
    assert plan.seconds(Speed(train=10, embed=40)) == pytest.approx(full / 10 + frozen / 40)
    assert plan.seconds(Speed(train=10, embed=40), epochs_done=2) < plan.seconds(
        Speed(train=10, embed=40), epochs_done=1)
    speed = measure_speed(FinetuneConfig(**TINY))
    assert speed.train > 0 and speed.embed > speed.train / 10


def test_training_crops_are_a_share_of_the_evaluated_size(labelled, monkeypatch):
    from imgsearch_gui.ml.finetune import loop

    assert FinetuneConfig(size=224).crop_size == 192 and FinetuneConfig(size=32).crop_size == 32
    shapes = []
    real = loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda run, stage, x, rows: shapes.append(
        tuple(x.shape[-2:])) or real(run, stage, x, rows))
    run_to_end(finetune(labelled, FinetuneConfig(**TINY, epochs=1, val_fraction=0.5), None))
    assert shapes and set(shapes) == {(48, 48)}  # 64 px evaluated, 48 px crops trained


def test_class_sample_takes_the_classes_in_turn():
    from imgsearch_gui.ml.finetune.batches import class_sample

    labels = [0] * 10 + [1] * 3 + [2] * 10
    rows = class_sample(labels, 9, random.Random(0))
    assert len(rows) == len(set(rows)) == 9
    assert np.bincount([labels[r] for r in rows]).tolist() == [3, 3, 3]
    rows = class_sample(labels, 15, random.Random(0))
    assert np.bincount([labels[r] for r in rows]).tolist() == [6, 3, 6]
    assert class_sample(labels, 100, random.Random(0)) == list(range(len(labels)))
