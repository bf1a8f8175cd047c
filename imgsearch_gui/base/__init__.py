"""The bottom layer: plain types, errors, photo decoding, the model registry, paths and logging.

Nothing here imports torch, hnswlib or Qt, so every other part (and the GUI at start-up) can use it
cheaply.
"""
