"""The settings dialog offers only what works here and marks the registry's real defaults; a model
that fails to load gives way to the last one that worked (issue 17, item 5)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from imgsearch_gui.base import registry
from imgsearch_gui.base.errors import DeviceUnavailableError
from imgsearch_gui.ui import model_service
from imgsearch_gui.ui.messages import Level
from imgsearch_gui.ui.model_service import open_library
from imgsearch_gui.ui.prefs import ModelChoice


def dialog_for(qtbot, choice: ModelChoice, **kwargs):
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(choice, **kwargs)
    qtbot.addWidget(dialog)
    return dialog


def entries(box) -> dict[str, tuple[str, bool]]:
    model = box.model()
    return {box.itemData(i): (box.itemText(i), model.item(i).isEnabled())
            for i in range(box.count())}


@pytest.fixture
def no_cuda(monkeypatch):
    """torch finds no CUDA GPU (what the dialog asks, through ml), asked afresh."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model_service.unavailable_devices.cache_clear()
    yield
    model_service.unavailable_devices.cache_clear()


def test_the_labels_mark_the_registrys_defaults(qtbot):
    dialog = dialog_for(qtbot, ModelChoice())
    for box, default in ((dialog.backbone, registry.DEFAULT_BACKBONE),
                         (dialog.pooling, registry.DEFAULT_POOLING),
                         (dialog.device, registry.DEFAULT_DEVICE),
                         (dialog.runtime, registry.DEFAULT_RUNTIME)):
        marked = [name for name, (text, _) in entries(box).items() if "(default)" in text]
        assert marked == [default]
        assert box.currentData() == default  # a fresh choice shows the defaults
    assert "(default)" not in dialog.pooling.itemText(dialog.pooling.findData("gem"))
    assert dialog.pooling.currentText().startswith("R-MAC")


def test_test_only_backbones_are_never_offered(qtbot):
    dialog = dialog_for(qtbot, ModelChoice())
    offered = list(entries(dialog.backbone))
    assert offered == registry.backbone_names()
    hidden = [n for n, b in registry.BACKBONES.items() if b.hidden]
    assert "tiny" in hidden and not set(hidden) & set(offered)


def test_cuda_is_greyed_out_saying_why_without_a_gpu(qtbot, no_cuda):
    dialog = dialog_for(qtbot, ModelChoice())
    shown = entries(dialog.device)
    assert {n: on for n, (_, on) in shown.items()} == {"auto": True, "cpu": True, "cuda": False}
    assert "not available here" in shown["cuda"][0]
    reason = dialog.device.itemData(dialog.device.findData("cuda"), Qt.ItemDataRole.ToolTipRole)
    assert "no CUDA GPU" in reason and "Automatic uses the CPU" in reason
    assert reason in dialog.device.toolTip()


def test_cuda_is_offered_where_torch_finds_a_gpu(qtbot, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model_service.unavailable_devices.cache_clear()
    try:
        dialog = dialog_for(qtbot, ModelChoice())
    finally:
        model_service.unavailable_devices.cache_clear()
    assert entries(dialog.device)["cuda"] == (registry.label("cuda"), True)


def test_the_dialog_opens_quickly_with_the_device_check_cached(qtbot, no_cuda):
    from imgsearch_gui.ui.dialogs.settings import SettingsDialog

    model_service.unavailable_devices()  # what the loader worker asks once the model loaded
    t0 = time.perf_counter()
    dialog = SettingsDialog(ModelChoice())
    elapsed = time.perf_counter() - t0
    qtbot.addWidget(dialog)
    assert elapsed < 0.5, f"the settings dialog took {elapsed * 1000:.0f} ms to build"


def test_the_loader_worker_asks_which_devices_work(make_window, monkeypatch):
    model_service.unavailable_devices.cache_clear()
    make_window()
    assert model_service.unavailable_devices.cache_info().currsize == 1  # cached by the worker


def index(qtbot, window, root) -> None:
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(root)


def search(qtbot, window, path):
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as blocker:
        window.search_paths([path])
    return blocker.args[0]


def failing_on(device: str, exc: BaseException):
    """A library factory that opens the real library, except on ``device``."""

    def factory(data_dir, model):
        if model.device == device:
            raise exc
        return open_library(data_dir, model)

    return factory


def test_a_device_that_fails_to_load_gives_back_the_previous_model(make_window, library_dir,
                                                                   qtbot, tiny_model):
    window = make_window(library_factory=failing_on(
        "cuda", DeviceUnavailableError("CUDA was requested but no CUDA GPU is available")))
    window.prefs.model = tiny_model
    index(qtbot, window, library_dir)
    with qtbot.waitSignal(window.modelFailed, timeout=30_000):
        assert window.apply_model(replace(tiny_model, device="cuda"))
    with qtbot.waitSignal(window.modelReady, timeout=60_000):
        pass  # the fallback loads
    assert window.model == tiny_model and window.prefs.model == tiny_model
    text = window.banner.text
    assert window.banner.isVisibleTo(window) and window.messages.last.level is Level.WARNING
    assert "Could not load the model with device CUDA GPU" in text
    assert "no CUDA GPU is available" in text and "previous model is back" in text
    assert "Traceback" not in text and not window.messages.last.details
    hits = search(qtbot, window, library_dir / "sub0" / "photo_00.png")  # search works
    assert hits[0].path == str(library_dir / "sub0" / "photo_00.png")


def test_an_unexpected_load_failure_keeps_its_traceback_in_the_details(make_window, qtbot,
                                                                       tiny_model, caplog):
    window = make_window(library_factory=failing_on("cuda", RuntimeError("CUDA error: boom")))
    with qtbot.waitSignal(window.modelFailed, timeout=30_000):
        window.apply_model(replace(tiny_model, device="cuda"))
    with qtbot.waitSignal(window.modelReady, timeout=60_000):
        pass
    message = window.messages.last
    assert window.model == tiny_model and message.level is Level.WARNING
    assert "an unexpected error (see Details)" in message.text and "Traceback" not in message.text
    assert "RuntimeError: CUDA error: boom" in message.details
    assert window.banner.details_button.isVisibleTo(window)
    assert any("could not load the model" in r.getMessage() and r.exc_info
               for r in caplog.records)


def test_a_failed_switch_does_not_rebuild_the_index_with_the_old_model(
        make_window, library_dir, qtbot, tiny_model, recorded_indexing):
    factory, calls = recorded_indexing

    def failing(data_dir, model):
        if model.pooling == "mac":
            raise DeviceUnavailableError("no such thing here")
        return factory(data_dir, model)

    window = make_window(library_factory=failing)
    index(qtbot, window, library_dir)
    done = len(calls)
    with qtbot.waitSignal(window.modelFailed, timeout=30_000):
        assert window.apply_model(replace(tiny_model, pooling="mac"))  # re-indexes all
    with qtbot.waitSignal(window.modelReady, timeout=60_000):
        pass
    qtbot.wait(300)  # a queued rebuild would start now
    assert len(calls) == done and not window.indexing


def test_a_saved_device_missing_here_falls_back_to_automatic(make_window, qtbot, tiny_model):
    cuda = replace(tiny_model, device="cuda")
    window = make_window(wait_model=False, model=cuda, library_factory=failing_on(
        "cuda", DeviceUnavailableError("CUDA was requested but no CUDA GPU is available")))
    window.prefs.model = cuda
    with qtbot.waitSignal(window.modelReady, timeout=60_000):
        pass
    assert window.model == replace(tiny_model, device="auto") == window.prefs.model
    assert "Could not load the model with device CUDA GPU" in window.banner.text
    assert "Now using device Automatic" in window.banner.text
