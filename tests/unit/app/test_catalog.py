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
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", [*catalog_mod.MIGRATIONS, (2, extra)])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", 2)
    c = Catalog(path)
    assert c.schema_version() == 2
    cols = [r[1] for r in c._conn.execute("PRAGMA table_info(files)")]
    assert "rating" in cols
    c.close()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    bad = "ALTER TABLE files ADD COLUMN ok INTEGER; THIS IS NOT SQL;"
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", [*catalog_mod.MIGRATIONS, (2, bad)])
    with pytest.raises(CatalogError, match="schema version 2 failed"):
        Catalog(path)
    monkeypatch.undo()
    c = Catalog(path)
    assert c.schema_version() == 1
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
    assert status == {"/p/a": ("pending", None), "/p/b": ("pending", None),
                      "/p/c": ("skipped", None)}
    assert cat.vector_ids() == set()


def test_remove_library(cat):
    one, two = cat.add_library("/one"), cat.add_library("/two")
    cat.add_file(one, "/one/a", 1, 1, "h", "pending")
    cat.add_file(two, "/two/a", 1, 1, "h", "pending")
    cat.remove_library(one)
    assert [li.root for li in cat.libraries()] == ["/two"]
    assert [f.path for f in cat.all_files()] == ["/two/a"]
