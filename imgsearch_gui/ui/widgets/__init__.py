"""The main window's parts, one widget per module: panels, first-run page, drop overlay."""
