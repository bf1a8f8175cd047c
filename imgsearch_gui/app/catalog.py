"""SQLite catalog: libraries, files (path, size, mtime, content hash, status) and vector ids.

Plain ``sqlite3`` in WAL mode. One row per file per library; a file points at the vector it
uses (``files.vector_id`` == the HNSW label); identical files share one vector row. The schema has
a version (``meta.schema_version``) and a list of migrations applied in order on open.

Write transactions are short (milliseconds; never open across embedding, scanning or hashing):
rows that do not refer to unsaved vectors (new files as pending, skipped files, deletions, moves
to stored vectors) are written in :meth:`Catalog.transaction` blocks and committed at once. The
rows that refer to vectors not saved yet (a new vector, its files indexed) are *staged*
(:meth:`Catalog.stage`): kept in memory and written by :meth:`Catalog.commit`, which the library
calls right after the store save that made those vectors durable, so a committed catalog never
refers to unsaved vectors. :meth:`Catalog.rollback` drops them. (A write outside a
``transaction`` block still opens a transaction that the next ``commit`` ends.)
All methods are serialised by one lock (the GUI searches while an index job writes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgsearch_gui.base.errors import (
    CatalogError,
    CatalogTooNewError,
    StorageFullError,
    StorageWriteError,
    WriterBusyError,
)

log = logging.getLogger(__name__)

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 10, 13  # primary result codes
#: seconds a connection waits for another one's write transaction before "database is locked"
BUSY_TIMEOUT_S = 30.0


def _is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the database ("database is locked"): busy, not damaged."""
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)

_OFFLINE_KEY = "offline-library:"

STATUS_PENDING = "pending"
STATUS_INDEXED = "indexed"
STATUS_SKIPPED = "skipped"


_MIGRATE_1 = """
        CREATE TABLE libraries (
            id INTEGER PRIMARY KEY,
            root TEXT NOT NULL UNIQUE,
            added REAL NOT NULL,
            last_indexed REAL
        );
        CREATE TABLE vectors (
            id INTEGER PRIMARY KEY,          -- == label in the vector store
            fast_hash TEXT NOT NULL,
            full_hash TEXT                   -- computed only when fast hashes collide
        );
        CREATE INDEX vectors_fast_hash ON vectors(fast_hash);
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            fast_hash TEXT,
            status TEXT NOT NULL,            -- pending | indexed | skipped
            reason TEXT,                     -- why it was skipped
            vector_id INTEGER REFERENCES vectors(id),
            updated REAL NOT NULL,
            UNIQUE (library_id, path)
        );
        CREATE INDEX files_vector ON files(vector_id);
        CREATE INDEX files_fast_hash ON files(fast_hash);
"""


#: Version 2: ``files.path`` and ``libraries.root`` hold a path that is not valid UTF-8 (a file
#: name with undecodable bytes, which ``os.fsdecode`` turns into lone surrogates) as a BLOB of its
#: bytes; valid paths stay TEXT, so no row changes. A version-1 program would misread such a row,
#: hence the new version (it refuses the catalog as too new).
_MIGRATE_2 = "-- paths that are not valid UTF-8 are stored as BLOBs of their bytes (no DDL)"

#: Version 3: ``undo_log``, the inverse statements of what short transactions committed since
#: the last commit that followed a store save (see :meth:`Catalog.rollback`). A version-2 program
#: would leave it stale, hence the new version.
_MIGRATE_3 = "CREATE TABLE IF NOT EXISTS undo_log (seq INTEGER PRIMARY KEY, stmt TEXT NOT NULL);"

#: Version 4, for the duplicate finder (app/duplicates): ``vectors.thumb``, a photo's tiny grey
#: thumbprint (base/thumbprint.py) written with its vector, from which the finder compares all
#: eight orientations of every photo without decoding it again; and ``distinct_pairs``, pairs of
#: file contents (fast hashes, which a model change keeps) the user said are not duplicates.
_MIGRATE_4 = """
        ALTER TABLE vectors ADD COLUMN thumb BLOB;
        CREATE TABLE IF NOT EXISTS distinct_pairs (
            a TEXT NOT NULL,                 -- the smaller fast hash of the pair
            b TEXT NOT NULL,
            added REAL NOT NULL,
            PRIMARY KEY (a, b)
        );
"""

_TABLES = {  # table -> (primary key, columns): the tables the undo log covers
    "libraries": ("id", ("id", "root", "added", "last_indexed")),
    "vectors": ("id", ("id", "fast_hash", "full_hash", "thumb")),
    "files": ("id", ("id", "library_id", "path", "size", "mtime_ns", "fast_hash", "status",
                     "reason", "vector_id", "updated")),
    "meta": ("key", ("key", "value")),
}


def _undo_triggers() -> str:
    """TEMP triggers (of this connection: a reader's connection logs nothing) that append the
    inverse statement of every change of the catalog's tables to ``undo_log``, in the change's
    transaction (``quote`` keeps BLOB paths and REAL times exact)."""
    sql = []
    for table, (pk, cols) in _TABLES.items():
        values = "||','||".join(f"quote(old.{c})" for c in cols)
        sets = "||','||".join(f"'{c}='||quote(old.{c})" for c in cols)
        head = "INSERT INTO undo_log(stmt) VALUES ("
        sql += [
            f"CREATE TEMP TRIGGER IF NOT EXISTS undo_{table}_i AFTER INSERT ON main.{table} "
            f"BEGIN {head}'DELETE FROM {table} WHERE {pk}='||quote(new.{pk})); END;",
            f"CREATE TEMP TRIGGER IF NOT EXISTS undo_{table}_u AFTER UPDATE ON main.{table} "
            f"BEGIN {head}'UPDATE {table} SET '||{sets}||' WHERE {pk}='||quote(new.{pk})); END;",
            f"CREATE TEMP TRIGGER IF NOT EXISTS undo_{table}_d BEFORE DELETE ON main.{table} "
            f"BEGIN {head}'INSERT INTO {table}({','.join(cols)}) VALUES ('||{values}||')'); END;",
        ]
    return "\n".join(sql)


_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)[^;]*;", re.IGNORECASE)


def _without_added_columns(conn: sqlite3.Connection, script: str) -> str:
    """``script`` without the ADD COLUMNs whose column is there already: SQLite has no ADD COLUMN
    IF NOT EXISTS, and a step must be safe to run again (a version number written back by hand,
    a step whose version write was lost)."""
    def keep(match: re.Match[str]) -> str:
        table, column = match.group(1), match.group(2)
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        return "" if column in columns else match.group(0)

    return _ADD_COLUMN.sub(keep, script)


#: (version, SQL script) in order; a new schema version appends one entry.
MIGRATIONS: list[tuple[int, str]] = [(1, _MIGRATE_1), (2, _MIGRATE_2), (3, _MIGRATE_3),
                                     (4, _MIGRATE_4)]
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass(frozen=True)
class FileRecord:
    id: int
    library_id: int
    path: str
    size: int
    mtime_ns: int
    fast_hash: str | None
    status: str
    reason: str | None
    vector_id: int | None


@dataclass(frozen=True)
class LibraryRecord:
    id: int
    root: str
    files: int
    indexed: int
    skipped: int
    pending: int
    last_indexed: float | None


_FILE_COLS = "id, library_id, path, size, mtime_ns, fast_hash, status, reason, vector_id"


def to_db_path(path: str) -> str | bytes:
    """The stored form of a path: itself when it is valid UTF-8, else its bytes (a BLOB), so a
    name with undecodable bytes round-trips byte-exact (``os.fsencode(from_db_path(...))``)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def from_db_path(value: str | bytes) -> str:
    """The path of a stored value (see :func:`to_db_path`)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


class Catalog:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._staged: list[Callable[[], None]] = []  # see stage()
        self._staged_paths: dict[int, list[tuple[int, str]]] = {}  # vector -> (library, path)
        #: bumped by every write: lets callers cache derived data (e.g. a library's vector ids)
        self.changes = 0
        try:
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_S,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA recursive_triggers=ON")  # REPLACE logs the row it deletes
            self._migrate()
            self._conn.executescript(_undo_triggers())
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            if _is_busy(exc):
                raise self._busy(exc) from exc
            raise CatalogError(f"the catalog {self.path} is damaged ({exc})") from exc
        except (CatalogError, WriterBusyError):
            self._conn.close()
            raise

    def _busy(self, exc: sqlite3.Error) -> WriterBusyError:
        log.warning("the catalog %s stayed locked by another connection for %g s: %s", self.path,
                    BUSY_TIMEOUT_S, exc)
        return WriterBusyError(self.path.parent, None, None)

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self._lock:
            conn = self._conn
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise CatalogTooNewError(
                    f"The catalog {self.path} has schema version {version}, newer than this "
                    f"program supports ({SCHEMA_VERSION}). Update imgsearch."
                )
            for target, migration in MIGRATIONS:
                if target <= version:
                    continue
                log.info("migrating catalog %s to schema version %d", self.path, target)
                # one transaction per step (executescript would commit a Python-level one)
                script = (
                    f"BEGIN IMMEDIATE;\n{_without_added_columns(conn, migration)}\n"
                    "INSERT OR REPLACE INTO meta(key, value) "
                    f"VALUES ('schema_version', '{int(target)}');\nCOMMIT;"
                )
                try:
                    conn.executescript(script)
                except sqlite3.DatabaseError as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if _is_busy(exc):
                        raise self._busy(exc) from exc
                    raise CatalogError(
                        f"migrating the catalog {self.path} to schema version {target} "
                        f"failed: {exc}"
                    ) from exc

    def schema_version(self) -> int:
        row = self._conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The lock for a write; a full disk or an I/O error as the storage error types (the
        sqlite error code tells them apart; Python 3.11+ exposes it)."""
        with self._lock:
            try:
                yield
            except sqlite3.OperationalError as exc:
                primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
                if primary == _SQLITE_FULL:
                    raise StorageFullError(self.path.parent, f"writing the catalog failed: {exc}"
                                           ) from exc
                if primary == _SQLITE_IOERR:
                    raise StorageWriteError(self.path.parent, f"writing the catalog failed: {exc}"
                                            ) from exc
                if _is_busy(exc):
                    raise self._busy(exc) from exc
                raise

    def _write(self, sql: str, args: Sequence | Iterable = ()) -> sqlite3.Cursor:
        with self._writing():
            self.changes += 1
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            return self._conn.execute(sql, args)  # type: ignore[arg-type]

    def _write_many(self, sql: str, rows: Iterable[Sequence]) -> None:
        with self._writing():
            self.changes += 1
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, rows)

    def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One short write transaction: the writes of the block, committed at its end (rolled
        back, with what was staged, if it raises). Staged writes wait for :meth:`commit`.

        Committed without an fsync (``synchronous=NORMAL``; a job commits one per moved file):
        a power loss may take it back, whole, with its undo entries, which is what the next
        writer's :meth:`rollback` would do anyway; :meth:`commit` and :meth:`mark` sync it."""
        with self._writing():
            if not self._conn.in_transaction:
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                self._discard()
                raise
            finally:
                if not self._conn.in_transaction:
                    self._conn.execute("PRAGMA synchronous=FULL")

    def stage(self, write: Callable[[], None], vector: int | None = None,
              files: Sequence[tuple[int, str]] = ()) -> None:
        """Run ``write`` (catalog writes) in the transaction of the next :meth:`commit`; dropped
        by :meth:`rollback`. For rows that refer to vectors the store has not saved yet. With
        ``vector`` and its ``files`` ((library id, path), the rows ``write`` points at it), this
        connection's searches find them meanwhile (:meth:`paths_of_vectors`), as they find the
        vectors in the store it added them to."""
        with self._lock:
            self.changes += 1
            self._staged.append(write)
            if vector is not None:
                self._staged_paths[int(vector)] = list(files)

    @property
    def staged(self) -> int:
        """How many staged writes wait for the next commit."""
        return len(self._staged)

    def commit(self) -> None:
        """Write what was staged and commit, in one short transaction; if that fails, nothing of
        it is applied (the transaction and the staged writes are rolled back)."""
        with self._writing():
            if not self._staged and not self._conn.in_transaction:
                return
            try:
                if not self._conn.in_transaction:
                    self._conn.execute("BEGIN IMMEDIATE")
                for write in self._staged:
                    write()
                self._conn.execute("DELETE FROM undo_log")
                self._conn.execute("COMMIT")
            except BaseException:
                self._discard()
                raise
            self._staged.clear()
            self._staged_paths.clear()

    def mark(self) -> None:
        """What is committed now is what :meth:`rollback` goes back to (as after a commit)."""
        with self._writing():
            if not self._conn.in_transaction:
                self._conn.execute("DELETE FROM undo_log")  # synchronous=FULL: syncs the WAL

    def rollback(self) -> None:
        """Back to the state of the last :meth:`commit` (or :meth:`mark`): the open transaction
        and the staged writes are dropped, and what short transactions committed since is taken
        back from ``undo_log``, in one transaction (the rows get their ids back). If that fails
        (a full disk: StorageError), the log stays for the next writer's rollback; what stays
        committed meanwhile refers to no unsaved vector (see the module docstring)."""
        with self._lock:
            self._discard()
            with self._writing():
                stmts = self._conn.execute("SELECT stmt FROM undo_log ORDER BY seq DESC").fetchall()
                if not stmts:
                    return
                self.changes += 1
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("PRAGMA defer_foreign_keys=ON")  # checked at the commit
                    for (stmt,) in stmts:
                        self._conn.execute(stmt)
                    self._conn.execute("DELETE FROM undo_log")
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:  # a full disk may have ended it already
                        self._conn.execute("ROLLBACK")
                    raise

    def _discard(self) -> None:
        """Drop the open transaction and the staged writes."""
        with self._lock:
            self.changes += 1
            self._staged.clear()
            self._staged_paths.clear()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def close(self) -> None:
        with self._lock:
            self._discard()
            self._conn.close()

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ libraries
    def library_id(self, root: str) -> int | None:
        rows = self._read("SELECT id FROM libraries WHERE root = ?", (to_db_path(root),))
        return int(rows[0][0]) if rows else None

    def add_library(self, root: str) -> int:
        existing = self.library_id(root)
        if existing is not None:
            return existing
        cur = self._write("INSERT INTO libraries(root, added) VALUES (?, ?)",
                          (to_db_path(root), time.time()))
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def set_library_indexed(self, library_id: int) -> None:
        self._write("UPDATE libraries SET last_indexed = ? WHERE id = ?", (time.time(), library_id))

    def remove_library(self, library_id: int) -> None:
        self._write("DELETE FROM files WHERE library_id = ?", (library_id,))
        self._write("DELETE FROM libraries WHERE id = ?", (library_id,))

    def libraries(self) -> list[LibraryRecord]:
        rows = self._read(
            """
            SELECT l.id, l.root, COUNT(f.id),
                   SUM(f.status = 'indexed'), SUM(f.status = 'skipped'), SUM(f.status = 'pending'),
                   l.last_indexed
            FROM libraries l LEFT JOIN files f ON f.library_id = l.id
            GROUP BY l.id ORDER BY l.root
            """
        )
        return [
            LibraryRecord(int(r[0]), from_db_path(r[1]), int(r[2]), int(r[3] or 0), int(r[4] or 0),
                          int(r[5] or 0), r[6])
            for r in rows
        ]

    # ------------------------------------------------------------------ files
    @staticmethod
    def _file(row: tuple) -> FileRecord:
        return FileRecord(row[0], row[1], from_db_path(row[2]), *row[3:])

    def files_of_library(self, library_id: int) -> dict[str, FileRecord]:
        rows = self._read(f"SELECT {_FILE_COLS} FROM files WHERE library_id = ?", (library_id,))
        return {f.path: f for f in map(self._file, rows)}

    def all_files(self) -> list[FileRecord]:
        return [self._file(r) for r in self._read(f"SELECT {_FILE_COLS} FROM files ORDER BY id")]

    def file_count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM files")[0][0])

    def add_file(
        self,
        library_id: int,
        path: str,
        size: int,
        mtime_ns: int,
        fast_hash: str | None,
        status: str,
        reason: str | None = None,
        vector_id: int | None = None,
    ) -> int:
        cur = self._write(
            "INSERT INTO files(library_id, path, size, mtime_ns, fast_hash, status, reason, "
            "vector_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (library_id, to_db_path(path), size, mtime_ns, fast_hash, status, reason, vector_id,
             time.time()),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def update_file(
        self,
        file_id: int,
        *,
        path: str,
        size: int,
        mtime_ns: int,
        fast_hash: str | None,
        status: str,
        reason: str | None,
        vector_id: int | None,
    ) -> None:
        self._write(
            "UPDATE files SET path = ?, size = ?, mtime_ns = ?, fast_hash = ?, status = ?, "
            "reason = ?, vector_id = ?, updated = ? WHERE id = ?",
            (to_db_path(path), size, mtime_ns, fast_hash, status, reason, vector_id, time.time(),
             file_id),
        )

    def delete_files(self, file_ids: Iterable[int]) -> None:
        self._write_many("DELETE FROM files WHERE id = ?", ((i,) for i in file_ids))

    def files_of_vector(self, vector_id: int) -> list[FileRecord]:
        rows = self._read(f"SELECT {_FILE_COLS} FROM files WHERE vector_id = ?", (vector_id,))
        return [self._file(r) for r in rows]

    # ------------------------------------------------------------------ vectors
    def add_vector(self, vector_id: int, fast_hash: str, full_hash: str | None = None,
                   thumb: bytes | None = None) -> None:
        self._write(
            "INSERT INTO vectors(id, fast_hash, full_hash, thumb) VALUES (?, ?, ?, ?)",
            (vector_id, fast_hash, full_hash, thumb),
        )

    def thumbprints(self) -> dict[int, bytes]:
        """vector id -> thumbprint, for the vectors that have one."""
        rows = self._read("SELECT id, thumb FROM vectors WHERE thumb IS NOT NULL")
        return {int(v): bytes(t) for v, t in rows}

    def set_thumbprints(self, thumbs: dict[int, bytes]) -> None:
        """Thumbprints computed after the fact (a catalog from before version 4)."""
        with self.transaction():
            # only where none is stored: a rebuild in between may have given the id to another
            self._write_many("UPDATE vectors SET thumb = ? WHERE id = ? AND thumb IS NULL",
                             ((t, int(v)) for v, t in thumbs.items()))

    def indexed_files(self) -> list[FileRecord]:
        """Every file that has a vector (searchable), by vector then path."""
        rows = self._read(f"SELECT {_FILE_COLS} FROM files WHERE status = 'indexed' AND "
                          "vector_id IS NOT NULL ORDER BY vector_id, path")
        return [self._file(r) for r in rows]

    # ------------------------------------------------------------------ not duplicates
    def add_distinct_pairs(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Remember that these contents (fast hashes) are not duplicates of each other; returns
        how many pairs were new."""
        rows = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
        before = self._conn.total_changes
        with self.transaction():
            self._write_many("INSERT OR IGNORE INTO distinct_pairs(a, b, added) VALUES (?, ?, ?)",
                             ((a, b, time.time()) for a, b in sorted(rows)))
        return self._conn.total_changes - before

    def distinct_pairs(self) -> set[tuple[str, str]]:
        """The pairs the user said are not duplicates, each as (smaller, larger) fast hash."""
        return {(a, b) for a, b in self._read("SELECT a, b FROM distinct_pairs")}

    def vectors_by_fast_hash(self, fast_hash: str) -> list[tuple[int, str | None]]:
        rows = self._read(
            "SELECT id, full_hash FROM vectors WHERE fast_hash = ? ORDER BY id", (fast_hash,)
        )
        return [(int(r[0]), r[1]) for r in rows]

    def set_vector_full_hash(self, vector_id: int, full_hash: str) -> None:
        self._write("UPDATE vectors SET full_hash = ? WHERE id = ?", (full_hash, vector_id))

    def vector_ids(self) -> set[int]:
        return {int(r[0]) for r in self._read("SELECT id FROM vectors")}

    def max_vector_id(self) -> int:
        row = self._read("SELECT MAX(id) FROM vectors")[0]
        return int(row[0]) if row[0] is not None else -1

    def orphan_vectors(self) -> list[int]:
        """Vectors no file points at any more."""
        rows = self._read(
            "SELECT v.id FROM vectors v WHERE NOT EXISTS "
            "(SELECT 1 FROM files f WHERE f.vector_id = v.id)"
        )
        return [int(r[0]) for r in rows]

    def delete_vectors(self, vector_ids: Iterable[int]) -> None:
        """Delete vector rows; files that used them become pending (to be embedded again)."""
        ids = [(int(v),) for v in vector_ids]
        if not ids:
            return
        self._write_many(
            "UPDATE files SET vector_id = NULL, status = 'pending', reason = NULL "
            "WHERE vector_id = ?",
            ids,
        )
        self._write_many("DELETE FROM vectors WHERE id = ?", ids)

    def reset_vectors(self) -> None:
        """Forget every vector (model change): indexed and skipped files become pending (another
        model may embed what this one could not)."""
        self._write(
            "UPDATE files SET vector_id = NULL, status = 'pending', reason = NULL "
            "WHERE vector_id IS NOT NULL OR status IN ('indexed', 'skipped')"
        )
        self._write("DELETE FROM vectors")

    def vectors_only_of_library(self, library_id: int) -> list[int]:
        """The vectors that only files of ``library_id`` use (orphans once it is removed)."""
        rows = self._read(
            "SELECT DISTINCT f.vector_id FROM files f WHERE f.library_id = ? AND f.vector_id IS "
            "NOT NULL AND NOT EXISTS (SELECT 1 FROM files o WHERE o.vector_id = f.vector_id AND "
            "o.library_id != ?) ORDER BY f.vector_id", (library_id, library_id))
        return [int(r[0]) for r in rows]

    def vector_ids_of_library(self, library_id: int) -> list[int]:
        rows = self._read(
            "SELECT DISTINCT vector_id FROM files WHERE library_id = ? AND vector_id IS NOT NULL",
            (library_id,),
        )
        with self._lock:
            staged = [v for v, files in self._staged_paths.items()
                      if any(lib == library_id for lib, _ in files)]
        return [int(r[0]) for r in rows] + staged

    def paths_of_vectors(
        self, vector_ids: Sequence[int], library_id: int | None = None
    ) -> dict[int, list[tuple[str, str]]]:
        """vector id -> [(path, library root)] (sorted by path), optionally within one library."""
        out: dict[int, list[tuple[str, str]]] = {}
        ids = [int(v) for v in vector_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT f.vector_id, f.path, l.root FROM files f JOIN libraries l "
                f"ON l.id = f.library_id WHERE f.vector_id IN ({marks})"
            )
            args: list = list(chunk)
            if library_id is not None:
                sql += " AND f.library_id = ?"
                args.append(library_id)
            for vid, path, root in self._read(sql + " ORDER BY f.path", args):
                out.setdefault(int(vid), []).append((from_db_path(path), from_db_path(root)))
        with self._lock:
            staged = {v: self._staged_paths[v] for v in ids if v in self._staged_paths}
        if staged:
            roots = {int(i): from_db_path(r) for i, r in self._read("SELECT id, root FROM libraries")}
            for vid, files in staged.items():
                out[vid] = sorted((path, roots.get(lib, "")) for lib, path in files
                                  if library_id is None or lib == library_id)
        return out

    def indexed_count(self, library_id: int) -> int:
        """The library's files that have a vector (searchable)."""
        rows = self._read("SELECT COUNT(*) FROM files WHERE library_id = ? AND status = 'indexed' "
                          "AND vector_id IS NOT NULL", (library_id,))
        return int(rows[0][0])

    def set_library_offline(self, library_id: int, offline: bool) -> None:
        """What the last index job of the library found (kept in ``meta``: no schema change)."""
        key = f"{_OFFLINE_KEY}{library_id}"
        if offline:
            self.set_meta(key, "1")
        else:
            self._write("DELETE FROM meta WHERE key = ?", (key,))

    def offline_library_roots(self) -> set[str]:
        """The roots the last index job found offline (missing, or without photos)."""
        # every search asks: the libraries table only (libraries() would count every file row)
        ids = {int(key[len(_OFFLINE_KEY):]) for (key,) in
               self._read("SELECT key FROM meta WHERE key LIKE ?", (_OFFLINE_KEY + "%",))}
        if not ids:
            return set()
        return {from_db_path(root) for lib_id, root in self._read("SELECT id, root FROM libraries")
                if int(lib_id) in ids}
