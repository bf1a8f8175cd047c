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
