"""The fine-tuning dialog: lists classes and bad files, trains the tiny model, emits use_model."""

from __future__ import annotations

from pathlib import Path

import pytest
from photos import labelled_folder, stripes

from imgsearch_gui.ml.checkpoint import load_checkpoint
from imgsearch_gui.ml.finetune import FinetuneConfig
from imgsearch_gui.ui.dialogs.finetune import FinetuneDialog


@pytest.fixture
def labelled(tmp_path):
    return labelled_folder(tmp_path / "labelled", per_class=6)


@pytest.fixture
def dialog(qtbot, tmp_path):
    config = FinetuneConfig(backbone="tiny", size=64, batch_size=8, lr=3e-3, workers=1,
                            epochs=2, head_epochs=1, val_fraction=0.5)
    dlg = FinetuneDialog(tmp_path / "data", base_config=config)
    qtbot.addWidget(dlg)
    yield dlg
    dlg.stop_workers()


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
