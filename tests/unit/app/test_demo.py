"""The demo library: copied out of the package, idempotent, never half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgsearch_gui import resources
from imgsearch_gui.app import demo


def test_prepare_copies_the_photos_once(tmp_path):
    folder = demo.prepare(tmp_path)
    assert folder == tmp_path / demo.DEMO_FOLDER
    names = sorted(p.name for p in folder.glob("*.jpg"))
    assert names == [p.name for p in resources.demo_photos()]
    assert (folder / "LICENSE.txt").exists()
    assert demo.example_query(folder).exists()
    assert not list(folder.glob(".*.tmp"))
    # the user's edits stay, a deleted photo comes back
    kept = folder / names[0]
    kept.write_bytes(b"changed")
    (folder / names[1]).unlink()
    demo.prepare(tmp_path)
    assert kept.read_bytes() == b"changed"
    assert (folder / names[1]).exists()


def test_is_demo_library(tmp_path):
    assert demo.is_demo_library(tmp_path / "demo-photos", tmp_path)
    assert demo.is_demo_library(str(tmp_path / "x" / ".." / "demo-photos"), tmp_path)
    assert not demo.is_demo_library(tmp_path / "photos", tmp_path)


@pytest.mark.slow
def test_the_demo_search_shows_the_app_working_with_the_real_model(tmp_path, capsys):
    """The bundled weights on the demo photos: the example query's siblings come back on top."""
    import json

    from imgsearch_gui.cli import main

    folder = demo.prepare(tmp_path)
    assert main(["index", str(folder), "--data-dir", str(tmp_path), "--quiet"]) == 0
    query = demo.example_query(folder)
    capsys.readouterr()
    assert main(["search", str(query), "-k", "3", "--json", "--data-dir", str(tmp_path)]) == 0
    names = [Path(h["path"]).name for h in json.loads(capsys.readouterr().out)]
    assert names[0] == query.name
    assert all(n.startswith("shoes-") for n in names), names
