from __future__ import annotations

import sqlite3

import pytest

from imgsearch_gui.app import catalog as catalog_mod
from imgsearch_gui.app.catalog import SCHEMA_VERSION, Catalog
from imgsearch_gui.base.errors import CatalogError


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "c.sqlite3")
    yield c
    c.close()


def test_schema_version_and_wal(cat, tmp_path):
    assert cat.schema_version() == SCHEMA_VERSION
    mode = sqlite3.connect(tmp_path / "c.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_migrations_apply_in_order(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    extra = "ALTER TABLE files ADD COLUMN rating INTEGER;"
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", [*catalog_mod.MIGRATIONS, (nxt, extra)])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", nxt)
    c = Catalog(path)
    assert c.schema_version() == nxt
    cols = [r[1] for r in c._conn.execute("PRAGMA table_info(files)")]
    assert "rating" in cols
    c.close()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    bad = "ALTER TABLE files ADD COLUMN ok INTEGER; THIS IS NOT SQL;"
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", [*catalog_mod.MIGRATIONS, (nxt, bad)])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", nxt)
    with pytest.raises(CatalogError, match=f"schema version {nxt} failed"):
        Catalog(path)
    monkeypatch.undo()
    c = Catalog(path)
    assert c.schema_version() == SCHEMA_VERSION
    assert "ok" not in [r[1] for r in c._conn.execute("PRAGMA table_info(files)")]
    c.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "c.sqlite3"
    c = Catalog(path)
    c.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    c.commit()
    c.close()
    with pytest.raises(CatalogError, match="newer"):
        Catalog(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="damaged"):
        Catalog(path)


def test_files_vectors_and_commit(cat, tmp_path):
    lib = cat.add_library("/photos")
    assert cat.add_library("/photos") == lib and cat.library_id("/nope") is None
    cat.add_vector(7, "h7")
    a = cat.add_file(lib, "/photos/a.jpg", 10, 100, "h7", "indexed", vector_id=7)
    b = cat.add_file(lib, "/photos/b.jpg", 10, 100, "h7", "indexed", vector_id=7)
    cat.add_file(lib, "/photos/c.jpg", 5, 100, None, "skipped", "broken")
    cat.add_file(lib, "/photos/d.jpg", 5, 100, "hd", "pending")
    assert cat.in_transaction
    # uncommitted work is invisible to another connection and gone after a rollback
    other = sqlite3.connect(tmp_path / "c.sqlite3")
    assert other.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
    cat.commit()
    assert other.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 4
    other.close()
    (info,) = cat.libraries()
    assert (info.root, info.files, info.indexed, info.skipped, info.pending) == (
        "/photos", 4, 2, 1, 1)
    assert cat.vectors_by_fast_hash("h7") == [(7, None)]
    cat.set_vector_full_hash(7, "full")
    assert cat.vectors_by_fast_hash("h7") == [(7, "full")]
    assert cat.paths_of_vectors([7]) == {7: [("/photos/a.jpg", "/photos"), ("/photos/b.jpg",
                                                                           "/photos")]}
    assert cat.vector_ids_of_library(lib) == [7]
    assert cat.orphan_vectors() == []
    cat.delete_files([a, b])
    assert cat.orphan_vectors() == [7]
    cat.rollback()
    assert cat.orphan_vectors() == [] and cat.file_count() == 4
    assert cat.max_vector_id() == 7


def test_delete_and_reset_vectors_make_files_pending(cat):
    lib = cat.add_library("/p")
    cat.add_vector(1, "h1")
    cat.add_vector(2, "h2")
    cat.add_file(lib, "/p/a", 1, 1, "h1", "indexed", vector_id=1)
    cat.add_file(lib, "/p/b", 1, 1, "h2", "indexed", vector_id=2)
    cat.add_file(lib, "/p/c", 1, 1, None, "skipped", "bad")
    cat.delete_vectors([1])
    status = {f.path: (f.status, f.vector_id) for f in cat.all_files()}
    assert status == {"/p/a": ("pending", None), "/p/b": ("indexed", 2), "/p/c": ("skipped", None)}
    cat.reset_vectors()
    status = {f.path: (f.status, f.vector_id) for f in cat.all_files()}
    # a rebuild (another model) tries the skipped files again too (issue 12 item 7)
    assert status == {"/p/a": ("pending", None), "/p/b": ("pending", None),
                      "/p/c": ("pending", None)}
    assert cat.vector_ids() == set()


def test_remove_library(cat):
    one, two = cat.add_library("/one"), cat.add_library("/two")
    cat.add_file(one, "/one/a", 1, 1, "h", "pending")
    cat.add_file(two, "/two/a", 1, 1, "h", "pending")
    cat.remove_library(one)
    assert [li.root for li in cat.libraries()] == ["/two"]
    assert [f.path for f in cat.all_files()] == ["/two/a"]


def test_a_path_that_is_not_utf8_round_trips_byte_exact(cat, tmp_path):
    """os.fsdecode turns undecodable bytes into lone surrogates, which sqlite could not encode
    (UnicodeEncodeError on every run); the catalog keeps the bytes and gives the name back."""
    import os

    root_bytes = b"/photos/\xff\xfe-old"
    name_bytes = root_bytes + b"/caf\xe9 \x80.jpg"
    root, name = os.fsdecode(root_bytes), os.fsdecode(name_bytes)
    lib = cat.add_library(root)
    assert cat.add_library(root) == lib and cat.library_id(root) == lib
    cat.add_vector(1, "h1")
    fid = cat.add_file(lib, name, 10, 100, "h1", "indexed", vector_id=1)
    ok = cat.add_file(lib, root + "/plain.jpg", 10, 100, "h2", "pending")
    cat.commit()
    assert [os.fsencode(p) for p in cat.files_of_library(lib)] == [name_bytes, root_bytes + b"/plain.jpg"]
    assert os.fsencode(cat.files_of_vector(1)[0].path) == name_bytes
    assert os.fsencode(cat.libraries()[0].root) == root_bytes
    assert cat.paths_of_vectors([1]) == {1: [(name, root)]}
    cat.update_file(ok, path=name + ".2", size=1, mtime_ns=2, fast_hash="h2", status="pending",
                    reason=None, vector_id=None)
    cat.commit()
    assert not cat.in_transaction
    assert {os.fsencode(f.path) for f in cat.all_files()} == {name_bytes, name_bytes + b".2"}
    assert fid in {f.id for f in cat.all_files()}


def test_a_version_1_catalog_migrates_and_keeps_its_rows(tmp_path):
    path = tmp_path / "c.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(catalog_mod._MIGRATE_1 + "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                       "INSERT INTO meta VALUES ('schema_version', '1');"
                       "INSERT INTO libraries(root, added) VALUES ('/p', 0);"
                       "INSERT INTO files(library_id, path, size, mtime_ns, status, updated) "
                       "VALUES (1, '/p/a.jpg', 1, 1, 'pending', 0);")
    conn.close()
    c = Catalog(path)
    assert c.schema_version() == SCHEMA_VERSION >= 2
    assert list(c.files_of_library(1)) == ["/p/a.jpg"]
    c.close()


def test_a_catalog_of_a_newer_version_is_too_new_not_damaged(tmp_path):
    from imgsearch_gui.base.errors import CatalogTooNewError

    path = tmp_path / "c.sqlite3"
    c = Catalog(path)
    c.add_library(__import__("os").fsdecode(b"/\xff"))  # a BLOB row, as a newer program writes
    c.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    c.commit()
    c.close()
    with pytest.raises(CatalogTooNewError, match="newer"):
        Catalog(path)


def test_a_reader_never_waits_for_an_open_write_transaction(tmp_path):
    """WAL: while an indexing job's batch is uncommitted, another connection (search, info, the
    GUI opening the data dir) opens the catalog and reads the last committed state at once."""
    import time

    path = tmp_path / "c.sqlite3"
    writer = Catalog(path)
    writer.add_library("/committed")
    writer.commit()
    writer.add_library("/pending")  # the write transaction stays open
    started = time.perf_counter()
    reader = Catalog(path)
    assert [lib.root for lib in reader.libraries()] == ["/committed"]
    assert time.perf_counter() - started < 2  # not the 30 s busy timeout
    reader.close()
    writer.close()
