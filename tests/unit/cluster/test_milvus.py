"""``imgsearch export --milvus`` and ``search --milvus`` on Milvus Lite (issue 19): the collection
gives the local search's ranking, a re-export syncs moves, new and deleted photos, and another
model's collection is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from imgsearch_gui.cli import dispatch as cli  # noqa: E402

TINY = ["--backbone", "tiny", "--size", "64"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def search_json(capsys, data, query, *extra) -> list[dict]:
    code, out, err = run(capsys, "search", str(query), "--data-dir", str(data), "--json", "-k",
                         "5", "--no-rotations", *extra)
    assert code == 0, err
    return json.loads(out.splitlines()[0])


@pytest.fixture
def indexed(tmp_path, photo_factory, capsys):
    folder = tmp_path / "photos"
    for i in range(16):
        photo_factory(f"photos/img{i:02d}.png", seed=i)
    odd = os.fsencode(str(folder)) + b"/odd \xff.png"
    with open(odd, "wb") as f:
        f.write((folder / "img00.png").read_bytes() + b"tail")  # same picture, other bytes
    data = tmp_path / "data"
    code, _, err = run(capsys, "index", str(folder), "--data-dir", str(data), *TINY, "--quiet")
    assert code == 0, err
    return folder, data, os.fsdecode(odd)


def export(capsys, data, uri) -> dict:
    code, out, err = run(capsys, "export", "--data-dir", str(data), "--milvus", uri, "--json")
    assert code == 0, err
    return json.loads(out)


def test_export_search_sync_and_mismatch(indexed, tmp_path, capsys, photo_factory):
    folder, data, odd = indexed
    uri = str(tmp_path / "shared.db")
    assert export(capsys, data, uri) | {"uri": 0} == {
        "added": 17, "updated": 0, "deleted": 0, "total": 17, "uri": 0, "collection": "imgsearch"}
    for query in (folder / "img03.png", folder / "img11.png", odd):
        local = search_json(capsys, data, query)
        shared = search_json(capsys, data, query, "--milvus", uri)
        assert [h["path"] for h in shared] == [h["path"] for h in local]
        assert [h.get("path_b64") for h in shared] == [h.get("path_b64") for h in local]
        assert [h.get("band") for h in shared] == [h.get("band") for h in local]
        assert [h["score"] for h in shared] == pytest.approx([h["score"] for h in local], abs=1e-4)
    assert export(capsys, data, uri)["added"] == 0  # nothing changed: nothing written
    res = subprocess.run([sys.executable, "-m", "imgsearch_gui.cli", "search", str(folder / "img03.png"),
                          "--data-dir", str(data), "--milvus", uri, "--json", "-k", "5",
                          "--no-rotations"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]  # another process: the collection is loaded
    assert json.loads(res.stdout)[0]["path"] == str(folder / "img03.png")
    assert "Traceback" not in res.stderr
    os.rename(folder / "img05.png", folder / "moved.png")
    (folder / "img06.png").unlink()
    photo_factory("photos/near03.png", seed=3, size=(100, 70))  # a new neighbour: img03's DBA moves
    run(capsys, "index", str(folder), "--data-dir", str(data), "--quiet")
    again = export(capsys, data, uri)
    assert (again["total"], again["deleted"]) == (17, 1) and again["added"] == 1 and again["updated"] >= 1
    for query in (folder / "img03.png", folder / "moved.png"):  # DBA vectors re-synced too
        local, shared = (search_json(capsys, data, query, *extra) for extra in ([], ["--milvus", uri]))
        assert [h["score"] for h in shared] == pytest.approx([h["score"] for h in local], abs=1e-4)
    hits = search_json(capsys, data, folder / "moved.png", "--milvus", uri)
    assert hits[0]["path"] == str(folder / "moved.png") and hits[0]["score"] > 0.999
    assert all("img06" not in h["path"] for h in search_json(capsys, data, folder / "img07.png",
                                                             "--milvus", uri))
    other = tmp_path / "other"
    run(capsys, "index", str(folder), "--data-dir", str(other), "--backbone", "tiny", "--size",
        "80", "--quiet")
    code, _, err = run(capsys, "export", "--data-dir", str(other), "--milvus", uri)
    assert code == 2 and "holds vectors of" in err


def test_search_of_a_missing_collection_is_a_clear_error(indexed, tmp_path, capsys):
    _, data, _ = indexed
    code, _, err = run(capsys, "search", str(indexed[0] / "img00.png"), "--data-dir", str(data),
                       "--milvus", str(tmp_path / "none.db"))
    assert code == 2 and "export to it first" in err


def test_a_changed_dba_vector_of_the_same_vector_id_is_synced(tmp_path):
    import numpy as np

    from imgsearch_gui.base.meta import ModelMeta
    from imgsearch_gui.cluster.milvus import MilvusCollection, PhotoRow

    meta = ModelMeta(backbone="tiny", weights_id="w", pooling="gem", pooling_params=(), dim=4,
                     input_size=64, mean=(0.0,) * 3, std=(1.0,) * 3)
    coll = MilvusCollection.open(str(tmp_path / "c.db"), meta, create=True)
    v = np.array([1, 0, 0, 0], np.float32)

    def row(dba) -> PhotoRow:
        return PhotoRow(1, 7, v, np.array(dba, np.float32), "/p.png", "", "/", 10, 20)

    assert coll.sync([row([1, 0, 0, 0])]).added == 1
    assert coll.sync([row([1, 0, 0, 0])]).updated == 0
    assert coll.sync([row([0, 1, 0, 0])]).updated == 1
    [(labels, sims)] = coll.stores(augmented=True)[0].query(np.array([[0, 1, 0, 0]], np.float32), 1)
    assert labels.tolist() == [1] and sims[0] == pytest.approx(1.0)
