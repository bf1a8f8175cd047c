"""``python -m imgsearch_gui.cli``: the same as the ``imgsearch`` command."""

import sys

from imgsearch_gui.cli.dispatch import main

sys.exit(main())
