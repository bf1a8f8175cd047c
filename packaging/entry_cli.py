"""PyInstaller entry point of the bundled command line (``imgsearch``)."""

import multiprocessing
import sys

from imgsearch_gui.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers re-enter the frozen executable
    sys.exit(main())
