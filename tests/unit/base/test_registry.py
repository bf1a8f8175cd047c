"""The registry is the one source of model names, labels and defaults (no torch needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import UnknownChoiceError, UserError


def test_defaults_are_offered_and_the_test_backbone_is_hidden():
    assert registry.backbone_names()[0] == registry.DEFAULT_BACKBONE == "efficientnet_lite0"
    assert "tiny" not in registry.backbone_names()
    assert "tiny" in registry.backbone_names(include_hidden=True)
    assert registry.DEFAULT_POOLING == "rmac" and registry.DEFAULT_DEVICE in registry.DEVICES


def test_embedder_config_defaults_come_from_the_registry():
    config = EmbedderConfig()
    assert (config.backbone, config.pooling, config.size, config.device, config.dba) == (
        registry.DEFAULT_BACKBONE, registry.DEFAULT_POOLING, registry.DEFAULT_SIZE,
        registry.DEFAULT_DEVICE, registry.DEFAULT_DBA)


def test_labels_mark_only_the_real_default():
    assert registry.label("rmac").endswith("(default)")
    assert "(default)" not in registry.label("gem")
    assert "mean" in registry.label("spoc") and "centre" not in registry.label("spoc")
    assert registry.label("efficientnet_lite0").endswith("(default)")
    assert registry.label("cuda") == "CUDA GPU"


@pytest.mark.parametrize(("check", "name"), [(registry.check_backbone, "alexnet"),
                                             (registry.check_pooling, "median")])
def test_an_unknown_name_is_a_user_error_naming_the_choices(check, name):
    with pytest.raises(UnknownChoiceError, match=f"unknown .* '{name}'; choose from") as info:
        check(name)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert "tiny" not in str(info.value)


def test_reading_the_registry_loads_no_torch():
    code = ("import sys; import imgsearch_gui.base.registry, imgsearch_gui.base.config, "
            "imgsearch_gui.base.errors; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_decoding_threads_follow_the_cores(monkeypatch):
    import os

    from imgsearch_gui.base.config import decode_workers

    assert decode_workers(3) == 3  # as configured
    for cores, threads in ((1, 2), (2, 2), (8, 4), (64, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert decode_workers(0) == threads


def test_every_runtime_has_a_label_and_auto_is_the_default():
    assert registry.DEFAULT_RUNTIME == "auto" and registry.runtime_names()[0] == "auto"
    assert set(registry.runtime_names()) == {"auto", "openvino", "torch"}
    assert registry.runtime_label("auto").startswith("Automatic (OpenVINO")  # not the device's
    assert registry.runtime_label("auto").endswith("(default)")
    assert "OpenVINO" in registry.runtime_label("openvino")
