"""Every error a caller may branch on, in one module: callers test types, never message text.

Plain Python (no torch, no Qt), so the GUI can catch a model's errors before torch is imported.
The hierarchy says what a caller can do:

- ``UserError``: bad input or an unusable choice; the message says what to change.
- ``StorageError``: the data dir cannot be used as it is (damaged, newer, another model).
  ``StorageWriteError`` / ``StorageFullError``: it could not be written (the old index is kept).
- ``WriterBusyError``: another process is writing to the data dir (wait, or try again later).
"""

from __future__ import annotations

import os
from pathlib import Path

from imgsearch_gui.base.meta import ModelMeta

_REBUILD_HINT = (
    "Rebuild the index with `imgsearch index --rebuild DIR` (or accept the rebuild the app offers)."
)


class UserError(Exception):
    """Bad input or a choice that cannot work here: one line for the user, no traceback."""


class ImageError(UserError):
    """A file that cannot be used as a photo; ``reason`` is a short message for the user."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class BackboneUnavailableError(UserError):
    """The weights of a backbone are not on this machine (and downloading was not allowed)."""


class UnknownChoiceError(UserError, ValueError):
    """A name that is not in the registry (backbone, pooling, device...)."""


class DeviceUnavailableError(UserError):
    """The chosen device (CUDA) is not usable on this machine."""


class ClusterUnavailableError(UserError):
    """The ``[cluster]`` extra (Ray, Milvus) is not installed, or the cluster cannot be reached."""


class ClusterJobError(UserError):
    """The cluster could not do the job (a worker failed, the model differs there)."""


class CollectionMismatchError(UserError):
    """A Milvus collection holds another model's vectors (its ModelMeta differs)."""


class ExportMismatchError(RuntimeError):
    """An optimised runtime's conversion of a model does not give torch's output: it is not
    used (ml/openvino_trunk.py); never shown to the user, who gets torch instead."""


class CheckpointError(UserError, ValueError):
    """A file that is not a readable imgsearch checkpoint."""


class FinetuneError(UserError, ValueError):
    """The labelled folder or the settings cannot be used for fine-tuning."""


class EvalError(UserError, ValueError):
    """The folder or ground truth given to ``eval`` cannot be evaluated."""


class WhiteningError(UserError, ValueError):
    """A whitening cannot be learned here (too few photos, or the index is whitened already)."""


class NotALibraryError(UserError, ValueError):
    """A folder that is not one of the indexed libraries."""


class QueryError(UserError, ValueError):
    """A query that cannot be searched: no photo, a vector of another size, or photos whose
    descriptors cancel each other out (their mean has no direction)."""


class StorageError(RuntimeError):
    """The data dir's index or catalog cannot be used as it is."""


class IndexCorruptError(StorageError):
    """The saved index cannot be read; the message says what is wrong and how to rebuild."""

    def __init__(
        self, directory: str | os.PathLike[str], detail: str, hint: str | None = None
    ) -> None:
        self.directory = str(directory)
        self.detail = detail
        super().__init__(
            f"The search index in {self.directory} is damaged or incomplete ({detail}). "
            f"Your photos are not affected. {hint or _REBUILD_HINT}"
        )


class ModelMismatchError(StorageError):
    """The index was built by another model than the current embedder (never mixed)."""

    def __init__(self, stored: ModelMeta, current: ModelMeta) -> None:
        self.stored = stored
        self.current = current
        super().__init__(
            "The search index was built with a different model:\n"
            f"  index:   {stored.describe()} (fingerprint {stored.fingerprint})\n"
            f"  current: {current.describe()} (fingerprint {current.fingerprint})\n"
            "Descriptors of different models cannot be compared. Rebuild the index with "
            "`imgsearch index --rebuild DIR` (or accept the rebuild the app offers), or switch back "
            "to the model that built it."
        )


class CatalogError(StorageError):
    """The catalog database cannot be used (damaged, or written by a newer version)."""


class CatalogTooNewError(CatalogError):
    """The catalog was written by a newer imgsearch: not damaged, so never moved aside."""


class CatalogCorruptError(CatalogError):
    """The catalog itself cannot be read: the library cannot open at all.

    ``app.library.move_aside_damaged`` clears the way for a fresh index without deleting anything.
    """

    def __init__(self, data_dir: Path | str, detail: str) -> None:
        self.data_dir = Path(data_dir)
        self.detail = detail
        super().__init__(
            f"The search index in {data_dir} is damaged or incomplete ({detail}). "
            "Your photos are not affected. Rebuild it: `imgsearch index --rebuild DIR` (or accept "
            "the rebuild the app offers) keeps the damaged files in a `damaged-...` folder of the "
            "data dir and indexes your folders again."
        )


class StorageWriteError(StorageError):
    """The index could not be written (an I/O error, or a file that reads back other than it was
    written). The previous saved index is kept, unchanged and current."""

    def __init__(self, directory: str | os.PathLike[str], detail: str) -> None:
        self.directory = str(directory)
        self.detail = detail
        super().__init__(f"Cannot save the search index in {self.directory}: {detail}. "
                         f"{self._advice}")

    _advice = "The previous index is kept; check the drive and run again."


class StorageFullError(StorageWriteError):
    """The disk (or a quota, or a file size limit) is full: ENOSPC, EDQUOT, EFBIG."""

    _advice = "The previous index is kept; free some space and run again."


class FileWriteError(StorageWriteError, OSError):
    """A file of the data dir's or the user's (embedder.json, a whitening, a checkpoint) could not
    be written; the previous file is kept. Still an OSError (with the write's ``errno``), for
    callers that catch those."""

    def __init__(self, path: str | os.PathLike[str], reason: str, errno: int | None = None) -> None:
        self.path = str(path)
        self.directory = str(Path(path).parent)
        self.detail = reason
        self.errno = errno
        self.strerror = reason
        self.filename = self.path
        StorageError.__init__(self, f"Cannot write {self.path}: {reason}. {self._file_advice}")

    _file_advice = "The previous file is kept; check the drive and run again."

    def __str__(self) -> str:  # OSError's would show (errno, strerror)
        return str(self.args[0])

    def __reduce__(self):  # pickling (multiprocessing): OSError's would pass other arguments
        return (type(self), (self.path, self.detail, self.errno))


class FileFullError(FileWriteError, StorageFullError):
    """A file could not be written for want of room (ENOSPC, EDQUOT, EFBIG)."""

    _file_advice = "The previous file is kept; free some space and run again."


class StoreConflictError(StorageError):
    """The saved index changed under a process that did not hold the writer lock (e.g. an older
    imgsearch writing to the same data dir); nothing was switched."""


class WriterBusyError(RuntimeError):
    """Another process is writing to the data dir and the caller chose not to wait."""

    def __init__(self, data_dir: str | os.PathLike[str], pid: int | None, what: str | None) -> None:
        self.data_dir = str(data_dir)
        self.pid = pid
        self.what = what
        holder = f"the {what or 'writer'} of pid {pid}" if pid else "another process"
        super().__init__(f"{self.data_dir} is being written by {holder}; try again when it has "
                         "finished (or leave out --no-wait to wait for it)")


class TrashJournalError(StorageError):
    """The undo list of photos moved to the trash (app/trash.py) cannot be used: written by a
    newer version, or unreadable. Nothing was moved because of it: the photos already trashed
    are safe in the system trash, from where they can be put back by hand."""

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"Cannot use the list of photos moved to the trash ({self.path}): {detail}. "
                         "Photos trashed before are in the system trash and can be put back from there.")
