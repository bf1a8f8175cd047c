import sys

import pytest

from imgsearch_gui import __main__ as app


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland check is Linux-only")
def test_without_a_screen_the_gui_says_so(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert app.main([]) == 2
    assert "no screen" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        app.main(["--version"])
    assert exc.value.code == 0 and "imgsearch" in capsys.readouterr().out


def test_choices_and_help_come_from_the_registry():
    from imgsearch_gui.base import registry

    parser = app.build_parser()
    device = next(a for a in parser._actions if a.dest == "device")
    assert list(device.choices) == registry.device_names()
    pooling = next(a for a in parser._actions if a.dest == "pooling")
    assert all(name in pooling.help for name in registry.pooling_names())
    assert parser.parse_args(["--backbone", "tiny"]).backbone == "tiny"  # hidden, still usable
