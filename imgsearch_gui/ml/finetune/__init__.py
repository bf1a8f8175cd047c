"""Fine-tuning the CNN on a labelled folder, as a generator of progress events.

The package: ``config`` (the recipe), ``data`` (the labelled folder: scan, check, decode, split),
``batches`` (balanced sampling, augmentation, prefetching), ``mining`` (hard negatives from a
pool), ``losses``, ``plan`` (what a run will do and how long it takes here), ``trainmode``
(BatchNorm frozen), ``events`` (what is yielded) and ``loop`` (:func:`finetune`, as short
steps). The descriptor is the Embedder's
(:class:`~imgsearch_gui.ml.descriptor.RetrievalNet`); the supervised whitening is learned with
:func:`~imgsearch_gui.ml.whitening.learn_supervised_whitening`.

``finetune(root, config, models_dir, cancel=...)`` checks the data (unreadable files listed and
left out; empty folders, a single class or classes with fewer than 2 images are errors before any
training), splits every class into train/val (or uses an existing ``train/`` + ``validation/``
layout as given), decodes every image once into memory at the model's input size, measures the
off-the-shelf val mAP, trains, and measures again. It yields, in order:

* :class:`~imgsearch_gui.base.types.Progress` while decoding ("load") and embedding ("embed"),
* :class:`DataReady` once the data is checked and split,
* :class:`TrainStep` after every optimiser step, :class:`EpochEnd` after every epoch,
* :class:`FinetuneResult` last (also when cancelled: then ``checkpoint`` is None).

Recipes. ``classification``: a cosine-softmax head (a linear layer with L2-normalised weights and
a temperature, initialised with the class means of the off-the-shelf descriptors) over the pooled,
L2-normalised descriptor; first the head alone, then the whole network with the head's learning
rate 10x the backbone's; label smoothing. ``contrastive`` / ``triplet``: batches of anchor pairs
(two images of a class) and, per pair, the hardest images of other classes in a pool of training
images re-embedded with the current network before every epoch (one per class); the loss then
takes positives and negatives within the batch. Only full epochs after the first half count
against the early-stopping patience; a run that beats no off-the-shelf epoch saves nothing.
GeM's p is learned in every recipe. BatchNorm layers stay
in eval mode (frozen running statistics, as cirtorch does). The best epoch (val mAP) is kept in
memory and written once, atomically, at the end: a cancelled run writes nothing.
"""

from imgsearch_gui.base.errors import FinetuneError
from imgsearch_gui.ml.embedder import resize_longest
from imgsearch_gui.ml.finetune.batches import balanced_batches, make_augment
from imgsearch_gui.ml.finetune.config import LOSSES, FinetuneConfig
from imgsearch_gui.ml.finetune.data import (
    FolderReport,
    FolderScan,
    check_images,
    inspect_folder,
    scan_folder,
    split_per_class,
    validate_counts,
)
from imgsearch_gui.ml.finetune.events import (
    ClassCount,
    DataReady,
    DataSummary,
    EpochEnd,
    FinetuneResult,
    TrainStep,
    run_to_end,
)
from imgsearch_gui.ml.finetune.loop import finetune
from imgsearch_gui.ml.finetune.losses import CosineHead, contrastive_loss, triplet_loss
from imgsearch_gui.ml.finetune.plan import Plan, Speed, measure_speed, plan_for, split_sizes
from imgsearch_gui.ml.finetune.trainmode import freeze_batchnorm

__all__ = [
    "LOSSES", "FinetuneConfig", "FinetuneError", "FinetuneResult", "DataReady", "DataSummary",
    "ClassCount", "TrainStep", "EpochEnd", "FolderScan", "FolderReport", "scan_folder",
    "inspect_folder", "check_images", "validate_counts", "split_per_class", "finetune",
    "run_to_end", "freeze_batchnorm", "balanced_batches", "make_augment", "CosineHead",
    "contrastive_loss", "triplet_loss", "resize_longest", "Plan", "Speed", "plan_for",
    "measure_speed", "split_sizes",
]
