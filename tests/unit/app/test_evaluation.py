"""`imgsearch eval` plumbing on generated data: folders, groups CSV, Oxford ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.app.evaluation import EvalSettings, evaluate
from imgsearch_gui.app.search import QuerySettings
from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import EvalError
from imgsearch_gui.cli import dispatch as cli
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.query_expansion import QueryExpansion


def _variant(path, class_seed, k):
    """Images of one class share a base pattern; each gets its own shift and noise."""
    rng = np.random.default_rng(class_seed)
    base = rng.integers(0, 255, (4, 6, 3)).astype(np.float32)
    big = np.kron(base, np.ones((18, 16, 1)))
    noise = np.random.default_rng(1000 * class_seed + k).normal(0, 10, big.shape)
    img = np.roll(big + noise, k * 2, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def tiny():
    return load_embedder(EmbedderConfig(backbone="tiny", size=64))


@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "classes"
    for c in range(3):
        for k in range(4):
            _variant(root / f"class{c}" / f"{k}.png", c, k)
    (root / "class0" / "bad.jpg").write_text("nope")
    return root


def test_labelled_folder(tiny, labelled, tmp_path):
    result = evaluate(tiny, labelled, cache_dir=tmp_path / "cache")
    assert result.n_images == 12 and result.n_queries == 12
    assert len(result.skipped_images) == 1
    assert 0.5 < result.map <= 1.0  # classes are visibly different: well above chance (~0.27)
    assert 0 <= result.mp_at_10 <= result.mp_at_5 <= result.mp_at_1 <= 1


def test_cache_avoids_embedding_twice(tiny, labelled, tmp_path, monkeypatch):
    evaluate(tiny, labelled, cache_dir=tmp_path / "cache")
    calls = []
    original = tiny.embed_files
    monkeypatch.setattr(tiny, "embed_files", lambda paths, cancel=None, quarters=0:
                        calls.append(len(paths)) or original(paths, cancel, quarters))
    again = evaluate(tiny, labelled, cache_dir=tmp_path / "cache",
                     settings=EvalSettings(1, QuerySettings(True, QueryExpansion(2)), whiten=0))
    assert calls == [1]  # only the unreadable file is tried again (every view was cached)
    assert 0 <= again.map <= 1


def test_groups_csv_and_ns_score(tiny, labelled, tmp_path):
    csv = tmp_path / "groups.csv"
    rows = ["filename,group"] + [f"class{c}/{k}.png,{c}" for c in range(3) for k in range(4)]
    csv.write_text("\n".join(rows))
    result = evaluate(tiny, labelled, groups=csv)
    assert result.ns_score is not None and 1.0 <= result.ns_score <= 4.0


def test_oxford_protocol_with_junk_and_missing_queries(tiny, tmp_path):
    root = tmp_path / "oxford"
    names = []
    for c in range(2):
        for k in range(3):
            name = f"site{c}_{k:06d}"
            _variant(root / f"{name}.jpg", c, k)
            names.append(name)
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "site0_1_query.txt").write_text("oxc1_site0_000000 5 5 80 60\n")
    (gt / "site0_1_good.txt").write_text("site0_000000\nsite0_000001\n")
    (gt / "site0_1_ok.txt").write_text("site0_000002\n")
    (gt / "site0_1_junk.txt").write_text("site1_000000\n")
    (gt / "missing_1_query.txt").write_text("oxc1_gone_000001 0 0 10 10\n")
    (gt / "missing_1_good.txt").write_text("gone_000001\n")
    result = evaluate(tiny, root, oxford_gt=gt)
    assert result.n_queries == 1 and result.skipped_queries == 1
    assert result.map > 0.5


def test_errors(tiny, tmp_path):
    with pytest.raises(EvalError, match="not a folder"):
        evaluate(tiny, tmp_path / "nothing")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(EvalError, match="class subfolders"):
        evaluate(tiny, tmp_path / "flat")


def test_cli_eval_json(labelled, tmp_path, capsys):
    code = cli.main(["eval", str(labelled), "--json", "--data-dir", str(tmp_path / "d"),
                     "--backbone", "tiny", "--size", "64", "--qe", "2", "--whiten", "8"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert {"map", "mp_at_1", "mp_at_5", "mp_at_10", "n_queries"} <= set(data)
    assert all(0 <= data[k] <= 1 for k in ("map", "mp_at_1", "mp_at_5", "mp_at_10"))
    # what was measured: the data dir's defaults (a new one: the shipped ones), flags over them
    assert data["settings"] == {"dba": registry.DEFAULT_DBA, "rotations": True,
                                "turned_min": registry.DEFAULT_TURNED_MIN, "qe": 2,
                                "qe_alpha": 3.0, "whiten": 8, "whiten_power": 1.0}
    cli.main(["eval", str(labelled), "--json", "--data-dir", str(tmp_path / "d"),
              "--backbone", "tiny", "--size", "64", "--no-rotations", "--dba", "0"])
    data = json.loads(capsys.readouterr().out)
    assert data["settings"] == {"dba": 0, "rotations": False, "qe": registry.DEFAULT_QE,
                                "qe_alpha": None if not registry.DEFAULT_QE else 3.0,
                                "whiten": None}


def test_per_query_names_the_query_photos(tiny, labelled):
    result = evaluate(tiny, labelled)
    names = [name for name, _ in result.per_query]
    assert len(names) == result.n_queries == 12 and all(n.endswith(".png") for n in names)
    assert np.mean([ap for _, ap in result.per_query]) == pytest.approx(result.map)
    assert sorted(names) == sorted(str(p) for p in labelled.rglob("*.png"))


@pytest.mark.parametrize("rotations", [True, False])
def test_eval_measures_what_search_returns(tiny, labelled, tmp_path, rotations):
    """Every query's AP from eval equals the AP of the ranking `ImageLibrary.search` returns for
    the same photo in a library of the same photos, with DBA and the same query settings."""
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.ml.evaluate import compute_ap
    from imgsearch_gui.ml.query_expansion import Augmentation

    query = QuerySettings(rotations, QueryExpansion(1))
    result = evaluate(tiny, labelled, settings=EvalSettings(dba=2, query=query))
    assert result.settings.dba == 2 and result.settings.query == query
    with ImageLibrary(tmp_path / "lib", tiny, augmentation=Augmentation(2), query=query) as lib:
        list(lib.index_library(labelled))
        for path, ap in result.per_query:
            me = str((labelled / path).resolve())
            ranking = [h.path for h in lib.search(path, k=100) if h.path != me]
            positives = {str(p.resolve()) for p in (labelled / path).parent.glob("*.png")} - {me}
            ranks = [i for i, p in enumerate(ranking) if p in positives]
            assert compute_ap(ranks, len(positives)) == pytest.approx(ap, abs=1e-6), path


def test_eval_counts_the_photos_indexing_would_find(tmp_path):
    """eval measures what search returns: its photos are the walk's (a photo shot RAW+JPEG
    once, hidden files left out), not every file with a photo extension."""
    from imgsearch_gui.app.evaluation import labelled_folder

    for cls in ("a", "b"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / "set" / cls / f"IMG_{i}.JPG")
        (tmp_path / "set" / cls / "IMG_0.CR2").write_bytes(b"raw beside its JPEG")
        Image.new("RGB", (8, 8)).save(tmp_path / "set" / cls / ".thumb.jpg")
    paths, labels = labelled_folder(tmp_path / "set")
    assert sorted(p.name for p in paths) == ["IMG_0.JPG", "IMG_0.JPG", "IMG_1.JPG", "IMG_1.JPG"]
    assert labels == ["a", "a", "b", "b"]
