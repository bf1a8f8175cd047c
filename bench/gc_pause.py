"""How long a full cyclic garbage collection takes in the app with the real model loaded, before
and after the app freezes its long-lived objects (MainWindow does it when the model is ready).

``QT_QPA_PLATFORM=offscreen python bench/gc_pause.py``
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def full_collection_ms() -> float:
    t0 = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from imgsearch_gui.ui import main_window, model_service
    from imgsearch_gui.ui.prefs import ModelChoice, Prefs

    freeze = model_service._freeze_long_lived_objects
    model_service._freeze_long_lived_objects = lambda: None  # measure the unfrozen state first
    tmp = Path(tempfile.mkdtemp())
    window = main_window.MainWindow(
        Prefs(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)), data_dir=tmp / "d",
        model=ModelChoice(), thumbnail_dir=tmp / "t")
    while window.library is None:
        app.processEvents()
        time.sleep(0.01)
    print(f"objects tracked by the GC: {len(gc.get_objects()):,}")
    before = sorted(full_collection_ms() for _ in range(5))
    freeze()
    after = sorted(full_collection_ms() for _ in range(5))
    print(f"full collection, median of 5: {before[2]:.1f} ms before the freeze, "
          f"{after[2]:.1f} ms after ({gc.get_freeze_count():,} objects frozen)")
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
