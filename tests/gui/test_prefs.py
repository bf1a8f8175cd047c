"""Preferences and the settings dialog read names, labels and defaults from base/registry.py."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from imgsearch_gui.app.config import save_config
from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ui.prefs import ModelChoice, Prefs, model_from_data_dir


def combo(box) -> list[tuple[str, str]]:
    return [(box.itemData(i), box.itemText(i)) for i in range(box.count())]


def test_model_choice_defaults_are_the_registrys():
    assert ModelChoice() == ModelChoice(registry.DEFAULT_BACKBONE, registry.DEFAULT_POOLING,
                                        registry.DEFAULT_SIZE, registry.DEFAULT_DEVICE)


def test_settings_offer_the_registrys_choices_with_its_labels(qtbot):
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(ModelChoice(), unavailable_devices={})  # every device works here
    qtbot.addWidget(dialog)
    assert combo(dialog.backbone) == [(n, registry.label(n)) for n in registry.backbone_names()]
    assert "tiny" not in [name for name, _ in combo(dialog.backbone)]  # test-only: hidden
    assert combo(dialog.pooling) == [(n, registry.label(n)) for n in registry.pooling_names()]
    assert combo(dialog.device) == [(n, registry.label(n)) for n in registry.device_names()]
    assert "(default)" in dialog.pooling.itemText(dialog.pooling.findData(registry.DEFAULT_POOLING))
    assert (dialog.size.minimum(), dialog.size.maximum()) == (registry.MIN_SIZE, registry.MAX_SIZE)


def test_settings_show_a_hidden_backbone_that_is_in_use(qtbot, tiny_model):
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(tiny_model)
    qtbot.addWidget(dialog)
    assert dialog.choice() == tiny_model and not dialog.needs_reindex()
    assert dialog.backbone.findData("tiny") >= 0


def test_prefs_validate_against_the_registry_and_keep_hidden_backbones(prefs, tiny_model):
    prefs.model = tiny_model
    prefs.sync()
    reread = Prefs(QSettings(prefs.qsettings.fileName(), QSettings.Format.IniFormat))
    assert reread.model == tiny_model
    for key, value in (("model/backbone", "nonet"), ("model/pooling", "median"),
                       ("model/device", "tpu"), ("model/size", registry.MAX_SIZE + 1)):
        prefs.qsettings.setValue(key, value)
    assert prefs.model == ModelChoice()


def test_model_from_data_dir_reads_the_saved_config(tmp_path):
    assert model_from_data_dir(tmp_path) is None  # nothing indexed there yet
    save_config(tmp_path, EmbedderConfig(backbone="resnet50", pooling="gem", size=512,
                                         device="cpu", weights="/models/tuned.pt"))
    assert model_from_data_dir(tmp_path) == ModelChoice("resnet50", "gem", 512, "cpu",
                                                        weights="/models/tuned.pt")
    path = tmp_path / "embedder.json"
    path.write_text('{"backbone": "vgg16", "size": "large"}')
    assert model_from_data_dir(tmp_path) is None  # no size: no choice
    path.write_text("[1, 2]")
    assert model_from_data_dir(tmp_path) is None
    path.write_text("not json")  # unreadable: no choice, the window keeps its settings
    assert model_from_data_dir(tmp_path) is None
