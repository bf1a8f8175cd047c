"""The fine-tuning recipe lives in ``base/finetune_config.py`` (torch-free: the CLI's parser and
the dialog read its defaults without importing torch); this keeps the package's name for it."""

from imgsearch_gui.base.finetune_config import LOSSES, FinetuneConfig

__all__ = ["LOSSES", "FinetuneConfig"]
