"""The application layer: the library facade, the indexing job, the search pipeline, evaluation
and the configuration on disk. It composes ``ml`` and ``index``; the CLI and the GUI call it."""
