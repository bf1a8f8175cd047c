"""The fine-tuning dialog: lists classes and bad files, estimates the time, trains the tiny model,
counts epochs as set, emits use_model (only for a model that beat the off-the-shelf one)."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import shiboken6
from photos import labelled_folder, stripes
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from imgsearch_gui.ml.checkpoint import load_checkpoint
from imgsearch_gui.ml.finetune import EpochEnd, FinetuneConfig, Speed, TrainStep, plan_for, split_sizes
from imgsearch_gui.ml.finetune import plan as finetune_plan
from imgsearch_gui.ui.dialogs import finetune as finetune_dialog
from imgsearch_gui.ui.dialogs.finetune import FinetuneDialog

CONFIG = FinetuneConfig(backbone="tiny", size=64, batch_size=8, lr=3e-3, workers=1,
                        epochs=2, head_epochs=1, val_fraction=0.5)
SLOW = Speed(train=0.1, embed=1.0)  # images/s: estimates of whole minutes for the small folder


@pytest.fixture
def labelled(tmp_path):
    return labelled_folder(tmp_path / "labelled", per_class=6)


@pytest.fixture
def measured(monkeypatch):
    """measure_speed replaced by a fixed speed (fast, deterministic); the sizes it was asked for."""
    sizes: list[int] = []

    def fixed(config: FinetuneConfig) -> Speed:
        sizes.append(config.size)
        return SLOW

    monkeypatch.setattr(finetune_dialog, "measure_speed", fixed)
    return sizes


@pytest.fixture
def make_dialog(qtbot, tmp_path, measured):
    dialogs = []

    def make(**changes) -> FinetuneDialog:
        dlg = FinetuneDialog(tmp_path / "data", base_config=replace(CONFIG, **changes))
        qtbot.addWidget(dlg)
        dialogs.append(dlg)
        return dlg

    yield make
    for dlg in dialogs:
        dlg.stop_workers()


@pytest.fixture
def dialog(make_dialog):
    return make_dialog()


def _expected_minutes(dialog: FinetuneDialog, speed: Speed = SLOW) -> int:
    cfg = dialog.config()
    report = dialog.report
    return round(plan_for(*split_sizes(report.counts, report.given_split, cfg), cfg).seconds(speed) / 60)


def _estimate_text(minutes: int) -> str:
    return f"Estimated time: about {minutes} min on this computer (plus loading the photos)"


@pytest.fixture
def fake_runs(monkeypatch):
    """finetune replaced by a run that records its folder, waits for ``may_end`` and yields
    nothing (the dialog's worker just ends): for what Start trains on and what happens beside it."""
    roots: list[Path] = []
    may_end = threading.Event()
    may_end.set()

    def fake(root, config, models_dir, cancel=None):
        roots.append(Path(root))
        while not may_end.wait(0.01) and not cancel.cancelled:
            pass
        return
        yield

    monkeypatch.setattr(finetune_dialog, "finetune", fake)
    yield roots, may_end
    may_end.set()


def test_lists_classes_and_bad_files_then_trains_and_offers_the_model(dialog, labelled, qtbot):
    with qtbot.waitSignal(dialog.inspected, timeout=20_000) as blocker:
        dialog.set_folder(labelled)
    report = blocker.args[0]
    assert report.error is None and report.counts == {"horizontal": (6, 0), "vertical": (6, 0)}
    assert dialog.classes.rowCount() == 2
    assert dialog.classes.item(0, 0).text() == "horizontal" and dialog.classes.item(0, 1).text() == "6"
    assert "broken.jpg" in dialog.bad_files.toPlainText()
    assert dialog.start_button.isEnabled()

    dialog.epochs.setValue(1)
    with qtbot.waitSignal(dialog.trainingFinished, timeout=60_000) as blocker:
        dialog.start_button.click()
        assert dialog.cancel_button.isEnabled()
    result = blocker.args[0]
    assert not result.cancelled and Path(result.checkpoint).is_file()
    assert Path(result.checkpoint).parent == dialog.data_dir / "models"
    assert load_checkpoint(result.checkpoint).backbone == "tiny"
    assert dialog.results.rowCount() == 2 and dialog.results.isVisible() is dialog.isVisible()
    assert result.improved
    assert re.fullmatch(r"Fine-tuned \((epoch 1/1|classifier warm-up)\)", dialog.results.item(1, 0).text())
    assert dialog.plot.losses and len(dialog.plot.maps) == 2
    qtbot.waitUntil(lambda: not dialog.cancel_button.isEnabled(), timeout=5000)
    assert dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.use_model, timeout=1000) as used:
        dialog.use_button.click()
    assert used.args == [result.checkpoint]
    dialog.show()
    dialog.plot.repaint()  # the curve paints without warnings


def test_bad_folder_cannot_start(dialog, tmp_path, qtbot):
    root = tmp_path / "one"
    for i in range(3):
        stripes(root / "only" / f"{i}.png", True, i)
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(root)
    assert "only one class" in dialog.data_status.text()
    assert not dialog.start_button.isEnabled()


def test_cancel_saves_nothing(dialog, labelled, qtbot):
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    dialog.epochs.setValue(50)
    dialog._event_orig = dialog._event

    def cancel_on_first_step(event):
        dialog._event_orig(event)
        if type(event).__name__ == "TrainStep":
            dialog.cancel()

    dialog._event = cancel_on_first_step  # connected below through start()
    with qtbot.waitSignal(dialog.trainingFinished, timeout=60_000) as blocker:
        dialog.start_button.click()
    assert blocker.args[0].cancelled
    assert not (dialog.data_dir / "models").exists() or not list((dialog.data_dir / "models").iterdir())
    assert "no model" in dialog.status.text()


def test_main_window_switches_to_a_finetuned_checkpoint(make_window, library_dir, qtbot, tmp_path):
    """Tools > Fine-tune is enabled; "Use for library" re-indexes with the checkpoint."""
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ui.prefs import Prefs

    window = make_window()
    assert window.finetune_action.isEnabled()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    state = load_backbone("tiny").model.state_dict()
    ckpt = save_checkpoint(tmp_path / "models" / "tuned.pt",
                           Checkpoint("tiny", state, "gem", {"p": 2.5}, 80))
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        assert window.use_finetuned(str(ckpt))
    assert blocker.args[0].embedded == 24
    assert window.model.weights == str(ckpt) and window.model.size == 80
    assert Prefs(window.prefs.qsettings).model.weights == str(ckpt)
    meta = window.library.embedder.meta
    assert meta.pooling == "gem" and dict(meta.pooling_params)["p"] == 2.5


def test_settings_offer_finetuned_networks(tmp_path, qtbot):
    """Fine-tuned checkpoints in DATA_DIR/models appear as a network choice in the settings."""
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog
    from imgsearch_gui.ui.prefs import ModelChoice

    state = load_backbone("tiny").model.state_dict()
    ckpt = str(save_checkpoint(tmp_path / "models" / "birds.pt",
                               Checkpoint("tiny", state, "gem", {"p": 2.5}, 96)))
    dialog = SettingsDialog(ModelChoice(), models_dir=tmp_path / "models")
    qtbot.addWidget(dialog)
    assert dialog.network.count() == 2 and "birds" in dialog.network.itemText(1)
    assert dialog.choice().weights is None
    dialog.network.setCurrentIndex(1)
    chosen = dialog.choice()
    assert (chosen.backbone, chosen.pooling, chosen.size, chosen.weights) == ("tiny", "gem", 96, ckpt)
    assert dialog.needs_reindex()
    dialog.backbone.setCurrentIndex(dialog.backbone.findData("efficientnet_lite0"))
    assert dialog.choice().weights is None  # the checkpoint does not fit another backbone


def test_whitening_option_adds_a_row_and_goes_into_the_checkpoint(dialog, labelled, qtbot):
    assert not dialog.whiten.isChecked()  # the config's default
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    dialog.epochs.setValue(1)
    dialog.whiten.setChecked(True)
    assert dialog.config().whiten
    with qtbot.waitSignal(dialog.trainingFinished, timeout=60_000) as blocker:
        dialog.start_button.click()
    result = blocker.args[0]
    assert result.map_whitened is not None
    assert dialog.results.rowCount() == 3
    assert dialog.results.item(2, 0).text() == "Fine-tuned + whitening"
    assert load_checkpoint(result.checkpoint).whitening is not None


def test_status_counts_the_epochs_as_set_and_names_the_warmup(dialog, labelled, qtbot):
    """'Epoch k/N' with N the spinbox value; the head epoch is the named warm-up before them."""
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    assert "1 epoch of classifier warm-up" in dialog.warmup_hint.text()
    assert not dialog.warmup_hint.isHidden()
    dialog.epochs.setValue(2)
    texts: list[str] = []
    bars: list[tuple[int, int, int, int]] = []
    original = dialog._event

    def record(event):
        original(event)
        if isinstance(event, TrainStep | EpochEnd):
            texts.append(dialog.status.text())
        if isinstance(event, TrainStep):
            bars.append((dialog.progress.value(), dialog.progress.maximum(),
                         event.run_step, event.run_steps))

    dialog._event = record  # connected through start()
    with qtbot.waitSignal(dialog.trainingFinished, timeout=60_000):
        dialog.start_button.click()
    assert texts[0].startswith("Classifier warm-up 1/1 (before the 2 epochs), step 1/")
    assert any(t.startswith("Epoch 2/2 (whole network), step") for t in texts)
    assert any(t.startswith("Epoch 1/2 (whole network): val mAP") for t in texts)
    assert not any("Epoch 3" in t or "/3" in t for t in texts)
    assert all(value == step and maximum == steps for value, maximum, step, steps in bars)
    assert bars[-1][0] == bars[-1][1] == bars[-1][3]
    per_epoch = dialog.plot.steps_per_epoch
    assert [x for x, _ in dialog.plot.maps] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert dialog.plot.warmup_steps == per_epoch
    dialog.loss.setCurrentIndex(dialog.loss.findData("triplet"))
    assert dialog.warmup_hint.isHidden()  # metric losses have no warm-up


def test_estimate_follows_the_plan_and_the_settings(dialog, labelled, qtbot, measured):
    shown_first: list[str] = []
    dialog.inspected.connect(lambda _report: shown_first.append(dialog.estimate.text()))
    with qtbot.waitSignal(dialog.estimated, timeout=20_000) as blocker:
        dialog.set_folder(labelled)
    assert shown_first == ["Estimating the training time…"]
    minutes = _expected_minutes(dialog)
    assert minutes == 3  # 2 full epochs of 8 images at 0.1/s, 38 embedded at 1/s
    assert blocker.args[0] == (f"Estimated time: about {minutes} min on this computer "
                               "(plus loading the photos)")
    dialog.epochs.setValue(5)  # no new measurement: the speed is the same
    assert f"about {_expected_minutes(dialog)} min" in dialog.estimate.text()
    assert "about 8 min" in dialog.estimate.text()
    dialog.loss.setCurrentIndex(dialog.loss.findData("contrastive"))
    assert f"about {_expected_minutes(dialog)} min" in dialog.estimate.text()
    assert measured == [64]
    with qtbot.waitSignal(dialog.estimated, timeout=20_000):
        dialog.size.setValue(96)  # another network input: measured again
        assert dialog.estimate.text() == "Estimating the training time…"
    assert measured == [64, 96]
    dialog.size.setValue(64)  # measured before: reused
    assert measured == [64, 96] and dialog.estimate.text().startswith("Estimated time: about")


def test_estimate_measures_the_speed_of_the_real_network(dialog, labelled, qtbot, monkeypatch):
    monkeypatch.setattr(finetune_dialog, "measure_speed", finetune_plan.measure_speed)
    with qtbot.waitSignal(dialog.estimated, timeout=30_000) as blocker:
        dialog.set_folder(labelled)
    assert re.fullmatch(r"Estimated time: (under a minute|about \d+ min) on this computer "
                        r"\(plus loading the photos\)", blocker.args[0])


def test_failed_measurement_shows_no_estimate_and_is_retried_on_a_change(dialog, labelled, qtbot,
                                                                          monkeypatch, caplog):
    calls: list[int] = []

    def broken_once(config):
        calls.append(config.size)
        if len(calls) == 1:
            raise RuntimeError("no memory")
        return SLOW

    monkeypatch.setattr(finetune_dialog, "measure_speed", broken_once)
    with caplog.at_level(logging.WARNING, logger=finetune_dialog.__name__):
        with qtbot.waitSignal(dialog.inspected, timeout=20_000):
            dialog.set_folder(labelled)
        qtbot.waitUntil(lambda: dialog._speed_worker is None, timeout=10_000)
    assert dialog.estimate.text() == "" and dialog.estimate.isHidden()
    assert "could not measure the fine-tuning speed" in caplog.text
    assert dialog.start_button.isEnabled()  # an estimate is a help, not a condition
    qtbot.wait(100)
    assert calls == [64] and dialog._speed_worker is None  # not retried in a loop by itself
    with qtbot.waitSignal(dialog.estimated, timeout=10_000) as blocker:
        dialog.epochs.setValue(3)  # a change: the failure is not final, measured again
        assert dialog.estimate.text() == "Estimating the training time…"
    assert calls == [64, 64]
    assert blocker.args[0] == _estimate_text(_expected_minutes(dialog))


def test_typed_folder_is_checked_on_enter_without_the_chooser(dialog, labelled, qtbot, monkeypatch,
                                                              tmp_path):
    def no_chooser(*args, **kwargs):
        pytest.fail("Enter in the folder field opened the folder chooser")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", no_chooser)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.folder.setFocus()
    qtbot.keyClicks(dialog.folder, str(tmp_path / "nowhere"))
    qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)
    assert "Not a folder" in dialog.data_status.text() and "nowhere" in dialog.data_status.text()
    assert not dialog.start_button.isEnabled() and dialog.isVisible()
    dialog.set_folder(labelled / "horizontal" / "h0.png")
    assert "Not a folder" in dialog.data_status.text() and "it is a file" in dialog.data_status.text()

    dialog.folder.clear()
    qtbot.keyClicks(dialog.folder, str(labelled))
    with qtbot.waitSignal(dialog.inspected, timeout=20_000) as blocker:
        qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)
    assert blocker.args[0].root == str(labelled) and blocker.args[0].error is None
    assert dialog.start_button.isEnabled()
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        qtbot.keyClick(dialog.folder, Qt.Key.Key_Enter)  # checks again; never presses Start
    assert dialog._train_worker is None and dialog.isVisible()
    assert dialog.start_button.isEnabled()


def test_a_run_that_never_beats_off_the_shelf_saves_nothing_and_offers_nothing(make_dialog,
                                                                               labelled, qtbot):
    dialog = make_dialog(lr=0.0)  # the weights never change: no epoch can beat the start
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    dialog.epochs.setValue(1)
    with qtbot.waitSignal(dialog.trainingFinished, timeout=60_000) as blocker:
        dialog.start_button.click()
    result = blocker.args[0]
    assert not result.improved and result.checkpoint is None and result.best is None
    assert dialog.results.rowCount() == 2
    assert dialog.results.item(0, 0).text() == "Off-the-shelf"
    assert "no epoch beat the off-the-shelf model" in dialog.results.item(1, 0).text()
    assert dialog.results.item(1, 1).text() == "—"
    status = dialog.status.text()
    assert "No epoch beat the off-the-shelf model" in status and "nothing was saved" in status
    assert "library keeps its model" in status
    qtbot.waitUntil(lambda: not dialog.cancel_button.isEnabled(), timeout=5000)
    assert not dialog.use_button.isEnabled()
    models = dialog.data_dir / "models"
    assert not models.exists() or not list(models.glob("*.pt"))


def test_enter_in_a_spin_box_never_starts_training(dialog, labelled, qtbot, fake_runs, monkeypatch):
    """Start is enabled (a checked folder) and Enter in the Epochs field still starts nothing."""
    roots, _ = fake_runs
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *args, **kwargs: pytest.fail("Enter opened the folder chooser"))
    dialog.show()
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    assert dialog.start_button.isEnabled()
    editor = dialog.epochs.lineEdit()
    dialog.epochs.setFocus()
    for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
        qtbot.keyClick(editor, key)
        qtbot.keyClick(dialog.epochs, key)
        qtbot.wait(20)
    assert roots == [] and dialog._train_worker is None
    assert dialog.isVisible() and dialog.result is None
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_an_edited_folder_is_not_trained_until_it_is_checked(dialog, labelled, qtbot, tmp_path,
                                                             fake_runs):
    """Typing a path drops the checked folder (Start off, "press Enter"); a pause on an existing
    folder checks it; Start then trains that folder, never the one checked before."""
    roots, _ = fake_runs
    other = labelled_folder(tmp_path / "other", per_class=5)
    with qtbot.waitSignal(dialog.inspected, timeout=20_000):
        dialog.set_folder(labelled)
    assert dialog.start_button.isEnabled()

    dialog.folder.selectAll()
    qtbot.keyClicks(dialog.folder, str(tmp_path / "nowhere"))
    assert dialog.report is None and not dialog.start_button.isEnabled()
    assert "Press Enter to check" in dialog.data_status.text()
    assert dialog.classes.rowCount() == 0 and dialog.estimate.isHidden()
    dialog.start()  # even if called: nothing checked, nothing trained
    assert dialog._train_worker is None
    qtbot.wait(dialog.FOLDER_CHECK_DELAY_MS + 200)
    assert dialog._inspect_worker is None and dialog.report is None  # not a folder: not checked
    assert "Press Enter to check" in dialog.data_status.text()

    dialog.folder.selectAll()
    with qtbot.waitSignal(dialog.inspected, timeout=20_000) as blocker:
        qtbot.keyClicks(dialog.folder, str(other))  # checked once the typing pauses
        assert not dialog.start_button.isEnabled()
    assert blocker.args[0].root == str(other) and blocker.args[0].counts["vertical"] == (5, 0)
    assert dialog.folder.text() == str(other) and dialog.start_button.isEnabled()
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog._train_worker is None, timeout=10_000)
    assert roots == [other]


def test_a_measurement_overlapped_by_a_run_is_dropped_and_redone_after_it(dialog, labelled, qtbot,
                                                                           monkeypatch, fake_runs):
    """Start while the speed is measured: that (slowed) speed is neither kept nor shown, nothing
    is measured during the run, and the estimate is measured and shown when the run ends."""
    _, may_end = fake_runs
    crawl = Speed(train=0.001, embed=0.01)  # what a measurement beside a run would see
    measuring, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def measure(config):
        calls.append(config.size)
        if len(calls) == 1:
            measuring.set()
            release.wait(30)
            return crawl
        return SLOW

    monkeypatch.setattr(finetune_dialog, "measure_speed", measure)
    shown: list[str] = []
    dialog.estimated.connect(shown.append)
    try:
        with qtbot.waitSignal(dialog.inspected, timeout=20_000):
            dialog.set_folder(labelled)
        assert measuring.wait(10) and dialog._speed_worker is not None
        assert dialog.estimate.text() == "Estimating the training time…"
        assert dialog.start_button.isEnabled()
        may_end.clear()
        dialog.start_button.click()
        assert dialog._train_worker is not None and dialog.estimate.isHidden()
        release.set()  # the measurement ends during the run
        qtbot.waitUntil(lambda: dialog._speed_worker is None, timeout=10_000)
        assert dialog._train_worker is not None  # still running
        assert dialog._speeds == {} and shown == [] and dialog.estimate.isHidden()
        dialog._update_estimate()  # asked during the run: no measurement beside it
        assert dialog._speed_worker is None and calls == [64]
        with qtbot.waitSignal(dialog.estimated, timeout=10_000) as blocker:
            may_end.set()  # the run ends: measured again, then shown
        assert calls == [64, 64]
        assert blocker.args[0] == _estimate_text(_expected_minutes(dialog))
        assert shown == [blocker.args[0]] and dialog.estimate.isVisible() is dialog.isVisible()
        assert dialog.start_button.isEnabled()
    finally:
        release.set()
        may_end.set()


def test_warmup_hint_and_estimate_follow_the_config(make_dialog, labelled, qtbot):
    """The hint is the config's warm-up (head_epochs for classification, none otherwise); the
    estimate is plan_for's for the settings shown, whitening included."""
    dialog = make_dialog(head_epochs=2)
    assert dialog.warmup_hint.text() == "plus 2 epochs of classifier warm-up first"
    dialog.loss.setCurrentIndex(dialog.loss.findData("contrastive"))
    assert dialog.config().warmup_epochs == 0 and dialog.warmup_hint.isHidden()
    dialog.loss.setCurrentIndex(dialog.loss.findData("classification"))
    assert not dialog.warmup_hint.isHidden()
    with qtbot.waitSignal(dialog.estimated, timeout=20_000) as blocker:
        dialog.set_folder(labelled)
    assert blocker.args[0] == _estimate_text(_expected_minutes(dialog))
    dialog.epochs.setValue(20)
    dialog.whiten.setChecked(True)
    assert dialog.config().whiten
    assert dialog.estimate.text() == _estimate_text(_expected_minutes(dialog))


def test_closing_starts_nothing_and_late_signals_reach_no_deleted_dialog(make_dialog, labelled, qtbot,
                                                                        tmp_path, measured, fake_runs):
    """A run that ends because the dialog closed measures nothing (until it shows again), and a
    worker's signal queued before the dialog was deleted is harmless."""
    _, may_end = fake_runs
    dialog = make_dialog()
    with qtbot.waitSignal(dialog.estimated, timeout=20_000):
        dialog.set_folder(labelled)
    dialog._speeds.clear()  # as if the run had overlapped the measurement: measured after it
    may_end.clear()
    dialog.start_button.click()
    assert dialog._train_worker is not None
    dialog.reject()  # stops the run
    qtbot.waitUntil(lambda: dialog._train_worker is None, timeout=10_000)
    qtbot.wait(50)
    assert measured == [64] and dialog._speed_worker is None  # nothing new on a closed dialog
    with qtbot.waitSignal(dialog.estimated, timeout=10_000):
        dialog.show()
    assert measured == [64, 64]

    gone = FinetuneDialog(tmp_path / "data", base_config=CONFIG)  # deleted below, not by qtbot
    with qtbot.waitSignal(gone.estimated, timeout=20_000):
        gone.set_folder(labelled)
    gone._speeds.clear()
    gone.start_button.click()
    gone.stop_workers()  # the run ends; its finished signal is still queued
    shiboken6.delete(gone)
    qtbot.wait(100)  # delivered to the deleted dialog: no error (pytest-qt would report one)
    assert measured == [64, 64, 64]  # gone's first estimate only: nothing after its run
