"""The runtime setting: saved with the other preferences, offered by the settings dialog (OpenVINO
disabled, saying why, when the package is missing), and changing it reloads the model without
re-indexing; the status bar names the runtime in use."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSettings, Qt

from imgsearch_gui.base import registry
from imgsearch_gui.ui.prefs import ModelChoice, Prefs


def dialog_for(qtbot, choice: ModelChoice):
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(choice)
    qtbot.addWidget(dialog)
    return dialog


def entries(box) -> list[tuple[str, str, bool]]:
    model = box.model()
    return [(box.itemData(i), box.itemText(i), model.item(i).isEnabled()) for i in range(box.count())]


def test_prefs_round_trip_the_runtime(prefs, tiny_model):
    assert prefs.model.runtime == registry.DEFAULT_RUNTIME == ModelChoice().runtime
    choice = replace(tiny_model, runtime="torch")
    prefs.model = choice
    prefs.sync()
    reread = Prefs(QSettings(prefs.qsettings.fileName(), QSettings.Format.IniFormat))
    assert reread.model == choice and reread.qsettings.value("model/runtime") == "torch"
    prefs.qsettings.setValue("model/runtime", "tensorrt")  # unknown here: the default
    assert prefs.model == replace(tiny_model, runtime=registry.DEFAULT_RUNTIME)


def test_the_runtime_reaches_the_embedder_config_and_keeps_the_index(tmp_path, tiny_model):
    torch_choice = replace(tiny_model, runtime="torch")
    assert torch_choice.to_config(tmp_path).runtime == "torch"
    assert tiny_model.to_config(tmp_path).runtime == "auto"
    assert torch_choice.same_descriptors(tiny_model)  # speed only: the index stays
    assert not replace(torch_choice, pooling="mac").same_descriptors(tiny_model)
    assert "runtime torch" in torch_choice.describe()


def test_the_data_dirs_runtime_is_read_like_its_device(tmp_path):
    from imgsearch_gui.app.config import save_config
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ui.prefs import model_from_data_dir

    save_config(tmp_path, EmbedderConfig(backbone="tiny", device="cpu", runtime="torch"))
    assert model_from_data_dir(tmp_path).runtime == "torch"


def test_the_dialog_offers_the_runtimes_and_returns_the_chosen_one(qtbot, tiny_model):
    dialog = dialog_for(qtbot, tiny_model)
    default = registry.DEFAULT_RUNTIME
    assert entries(dialog.runtime) == [
        (n, registry.RUNTIMES[n].label + (" (default)" if n == default else ""), True)
        for n in registry.runtime_names()
    ]
    assert dialog.runtime.currentText().startswith("Automatic (OpenVINO on the CPU")
    dialog.runtime.setCurrentIndex(dialog.runtime.findData("torch"))
    assert dialog.choice() == replace(tiny_model, runtime="torch")
    assert not dialog.needs_reindex() and not dialog.warning.isVisibleTo(dialog)
    assert "runtime only change speed" in dialog.note.text()
    assert dialog_for(qtbot, replace(tiny_model, runtime="openvino")).choice().runtime == "openvino"


def test_openvino_is_disabled_saying_why_when_it_is_not_installed(qtbot, monkeypatch, tiny_model):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    dialog = dialog_for(qtbot, tiny_model)
    enabled = {name: on for name, _, on in entries(dialog.runtime)}
    assert enabled == {"auto": True, "openvino": False, "torch": True}
    i = dialog.runtime.findData("openvino")
    assert "not installed" in dialog.runtime.itemData(i, Qt.ItemDataRole.ToolTipRole)
    assert dialog.choice().runtime == "auto"  # still offered: it falls back to PyTorch


def test_changing_the_runtime_reloads_without_reindexing(make_window, library_dir, qtbot,
                                                         tiny_model, recorded_indexing):
    factory, calls = recorded_indexing
    window = make_window(library_factory=factory)
    assert window.library.embedder.runtime == "openvino"  # "auto" on the CPU
    assert window.model_label.text() == "tiny · ready · OpenVINO"
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    asked: list[str] = []
    window.confirm = lambda title, text: asked.append(title) or True
    for runtime, shown in (("torch", "PyTorch"), ("auto", "OpenVINO")):
        with qtbot.waitSignal(window.modelReady, timeout=60_000):
            assert window.apply_model(replace(tiny_model, runtime=runtime))
        assert window.library.embedder.runtime == runtime.replace("auto", "openvino")
        assert window.model_label.text() == f"tiny · ready · {shown}"
        assert window.prefs.model.runtime == runtime
        qtbot.wait(200)  # a rebuild, had one been queued, would start now
        assert not window.indexing and not window.library.needs_rebuild
    runtimes = [(model.runtime, rebuild) for model, _, rebuild in calls]
    assert asked == [] and runtimes == [("auto", False)]  # the first indexing only
    photo = library_dir / "sub0" / "photo_00.png"
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as blocker:
        window.search_paths([str(photo)])
    assert blocker.args[0][0].path == str(photo) and blocker.args[0][0].score > 0.99
