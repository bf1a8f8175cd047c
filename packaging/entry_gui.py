"""PyInstaller entry point of the bundled desktop app (``imgsearch-gui``)."""

import multiprocessing
import sys

from imgsearch_gui.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers re-enter the frozen executable
    sys.exit(main())
