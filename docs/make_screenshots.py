"""Screenshots of the README: the first-run window and the demo search, with the real model.

``xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/make_screenshots.py`` (a real X server
gives real fonts; the offscreen platform works too). Uses a temporary data dir and settings.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from imgsearch_gui.ui.main_window import MainWindow
from imgsearch_gui.ui.prefs import ModelChoice, Prefs

OUT = Path(__file__).resolve().parent / "screenshots"


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        prefs = Prefs(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window = MainWindow(prefs, data_dir=Path(tmp) / "data", model=ModelChoice(),
                            thumbnail_dir=Path(tmp) / "thumbs")
        window.resize(1200, 760)
        window.show()
        shots = {}

        def first_run() -> None:
            shots["first-run"] = window.grab()
            window.start_demo()

        def searched(_hits) -> None:
            # let the thumbnails arrive and paint
            QTimer.singleShot(2500, lambda: (shots.__setitem__("demo", window.grab()), app.quit()))

        window.searchFinished.connect(searched)
        window.modelReady.connect(lambda: QTimer.singleShot(300, first_run))
        QTimer.singleShot(180_000, app.quit)
        app.exec()
        window.shutdown()
    for name, pixmap in shots.items():
        pixmap.save(str(OUT / f"{name}.png"))
        print(f"saved {OUT / name}.png")
    return 0 if len(shots) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
