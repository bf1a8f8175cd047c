"""``imgsearch duplicates`` end to end on the tiny backbone: text, --json, --trash, --undo,
--not-duplicates."""

from __future__ import annotations

import json
import shutil

import pytest
from photo_edits import mirrored
from trash_home import redirect_trash

from imgsearch_gui.cli import dispatch as cli

TINY = ["--backbone", "tiny", "--size", "64"]


@pytest.fixture
def indexed(tmp_path, real_photos, capsys):
    lib = tmp_path / "photos"
    lib.mkdir()
    astro = real_photos["astronaut"].resize((256, 256))
    astro.save(lib / "astro.png")
    mirrored(astro).save(lib / "astro mirror.jpg", quality=85)
    shutil.copyfile(lib / "astro.png", lib / "astro copy.png")
    real_photos["coffee"].resize((256, 171)).save(lib / "coffee.jpg")
    data = tmp_path / "data"
    assert cli.main(["index", str(lib), "--data-dir", str(data), *TINY]) == 0
    capsys.readouterr()
    return lib, data


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_groups_with_the_kept_file(indexed, capsys):
    lib, data = indexed
    code, out, _ = run(capsys, "duplicates", "--json", "--data-dir", str(data), *TINY)
    assert code == 0
    doc = json.loads(out)
    (group,) = doc["groups"]
    assert group["kind"] == "near"
    assert {f["path"] for f in group["files"]} == {str(lib / n) for n in
                                                    ("astro.png", "astro mirror.jpg", "astro copy.png")}
    assert [f["keep"] for f in group["files"]].count(True) == 1
    assert all(set(f) >= {"path", "score", "keep"} for f in group["files"])
    assert doc["photos"] == 4
    code, out, _ = run(capsys, "duplicates", "--json", "--kind", "exact", "--data-dir", str(data),
                       *TINY)
    (exact,) = json.loads(out)["groups"]  # the identical pair, out of the near group
    assert exact["kind"] == "exact" and {f["path"] for f in exact["files"]} == {
        str(lib / "astro.png"), str(lib / "astro copy.png")}


def test_trash_of_exact_copies_leaves_the_near_ones(indexed, capsys, tmp_path, monkeypatch):
    lib, data = indexed
    redirect_trash(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "duplicates", "--trash", "--kind", "exact", "--data-dir", str(data),
                       *TINY)
    assert code == 0 and "moved 1 file to the trash" in out
    assert (lib / "astro mirror.jpg").exists() and len(list(lib.iterdir())) == 3


def test_trash_then_undo(indexed, capsys, tmp_path, monkeypatch):
    lib, data = indexed
    trash_dir = redirect_trash(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "duplicates", "--trash", "--data-dir", str(data), *TINY)
    assert code == 0 and "moved 2 files to the trash" in out
    left = sorted(p.name for p in lib.iterdir())
    assert len(left) == 2 and "coffee.jpg" in left
    assert len(list((trash_dir / "files").iterdir())) == 2
    code, out, _ = run(capsys, "duplicates", "--json", "--data-dir", str(data), *TINY)
    assert json.loads(out)["groups"] == [] and json.loads(out)["photos"] == 2  # forgotten
    code, out, _ = run(capsys, "duplicates", "--undo", "--data-dir", str(data))
    assert code == 0 and out.count("restored") == 2
    assert len(list(lib.iterdir())) == 4
    code, _, err = run(capsys, "duplicates", "--undo", "--data-dir", str(data))
    assert code == 2 and "nothing to undo" in err


def test_not_duplicates_are_remembered(indexed, capsys):
    lib, data = indexed
    code, out, _ = run(capsys, "duplicates", "--not-duplicates", str(lib / "astro.png"),
                       str(lib / "astro mirror.jpg"), "--data-dir", str(data), *TINY)
    assert code == 0 and "1 new pairs" in out
    _, out, _ = run(capsys, "duplicates", "--json", "--data-dir", str(data), *TINY)
    (group,) = json.loads(out)["groups"]
    assert group["kind"] == "exact"  # only the identical copies stay together


def test_text_output_and_an_unknown_rule(indexed, capsys):
    _, data = indexed
    code, out, _ = run(capsys, "duplicates", "--data-dir", str(data), *TINY)
    assert code == 0 and "# group 1: near, 3 files" in out and "keep" in out
    code, _, err = run(capsys, "duplicates", "--keep-rule", "prettiest", "--data-dir", str(data))
    assert code == 2 and "unknown keep rule" in err
