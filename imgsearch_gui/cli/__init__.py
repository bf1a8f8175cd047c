"""The ``imgsearch`` command line: ``main`` parses and dispatches; one module per command group."""

from imgsearch_gui.cli.dispatch import main

__all__ = ["main"]
