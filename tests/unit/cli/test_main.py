"""The command line end to end on a tiny backbone: index, search (--json), info, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imgsearch_gui.base import registry
from imgsearch_gui.cli import dispatch as cli

TINY = ["--backbone", "tiny", "--size", "64"]


@pytest.fixture
def library(tmp_path, photo_factory):
    root = tmp_path / "photos"
    for i in range(12):
        photo_factory(f"photos/sub{i % 3}/img{i:02d}.PNG", seed=i)
    (root / "broken.jpg").write_text("this is not a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_then_search(library, tmp_path, capsys):
    data = tmp_path / "data"  # plain cosine scores (no DBA): the photo itself scores 1
    code, out, _ = run(capsys, "index", str(library), "--data-dir", str(data), *TINY, "--dba", "0")
    assert code == 0
    assert "12 embedded" in out and "2 skipped" in out
    assert "broken.jpg" in out and "empty.png" in out

    query = library / "sub1" / "img04.PNG"
    code, out, _ = run(capsys, "search", str(query), "-k", "5", "--data-dir", str(data))
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5 and lines[0].split()[0] == "1"
    assert lines[0].endswith("img04.PNG") and float(lines[0].split()[1]) == pytest.approx(1, abs=1e-4)


def test_search_json_lines_one_per_query_in_order(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    queries = [library / "sub0" / "img00.PNG", library / "sub2" / "img05.PNG"]
    code, out, _ = run(capsys, "search", *map(str, queries), "-k", "3", "--json",
                       "--data-dir", str(data))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2
    for query, hits in zip(queries, rows, strict=True):
        assert len(hits) == 3 and set(hits[0]) == {"path", "score"}
        assert hits[0]["path"] == str(query.resolve())
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1.0001 for s in scores)


def test_missing_or_bad_query_is_one_line_and_status_2(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    code, out, err = run(capsys, "search", str(tmp_path / "nope.jpg"), "--data-dir", str(data))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "nope.jpg" in err
    code, out, err = run(capsys, "search", str(library / "broken.jpg"), "--data-dir", str(data))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not an image" in err


def test_model_mismatch_refused(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    code, _, err = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "--data-dir",
                       str(data), "--pooling", "mac")
    assert code == 2 and "--rebuild" in err
    code, out, _ = run(capsys, "index", str(library), "--rebuild", "--pooling", "mac",
                       "--data-dir", str(data), *TINY)
    assert code == 0 and "12 embedded" in out
    code, out, _ = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "--data-dir", str(data))
    assert code == 0 and out.splitlines()[0].endswith("img00.PNG")


def test_info(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert code == 0
    assert "backbone:  tiny" in out and "dim:       64" in out and "12 vectors" in out
    assert str(data) in out and "device:    cpu" in out
    assert "runtime:   openvino" in out  # auto on the CPU


def test_the_runtime_is_chosen_kept_with_the_data_dir_and_keeps_the_index(library, tmp_path, capsys):
    data = tmp_path / "data"
    code, out, _ = run(capsys, "index", str(library), "--data-dir", str(data), *TINY,
                       "--runtime", "torch")
    assert code == 0 and "12 embedded" in out
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert "runtime:   torch" in out and "WARNING" not in out  # kept in embedder.json
    # another runtime gives the same descriptors: the index stays, nothing is embedded again
    code, out, _ = run(capsys, "index", str(library), "--data-dir", str(data), "--runtime", "openvino")
    assert code == 0 and "0 embedded" in out and "12 unchanged" in out
    code, out, _ = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "--data-dir", str(data),
                       "--json", "--no-rotations", "--qe", "0")
    assert json.loads(out.splitlines()[0])[0]["path"].endswith("img00.PNG")
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert "runtime:   openvino" in out


def test_building_the_parser_imports_no_torch():
    """``imgsearch --version`` or ``--help`` answers at once: torch, timm and OpenVINO are
    imported only by the commands that run a model."""
    code = ("import sys; from imgsearch_gui.cli.dispatch import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'openvino', 'hnswlib') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_index_rejects_a_missing_folder(tmp_path, capsys):
    code, _, err = run(capsys, "index", str(tmp_path / "missing"), "--data-dir", str(tmp_path), *TINY)
    assert code == 2 and "not a folder" in err


def test_console_entry_point_json_stdout_is_clean(library, tmp_path):
    data = tmp_path / "data"
    base = [sys.executable, "-m", "imgsearch_gui.cli"]
    subprocess.run(base + ["index", str(library), "--data-dir", str(data), *TINY, "-v", "--dba", "0"],
                   check=True, capture_output=True)
    res = subprocess.run(base + ["search", str(library / "sub0" / "img00.PNG"), "--json", "-v",
                                 "--data-dir", str(data)], capture_output=True, text=True, check=True)
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])[0]["score"] > 0.999


def test_rebuild_with_several_folders_keeps_all(tmp_path, photo_factory, capsys):
    for i in range(4):
        photo_factory(f"a/{i}.png", seed=i)
        photo_factory(f"b/{i}.png", seed=100 + i)
    data = tmp_path / "data"
    run(capsys, "index", str(tmp_path / "a"), str(tmp_path / "b"), "--data-dir", str(data), *TINY)
    code, out, _ = run(capsys, "index", str(tmp_path / "a"), str(tmp_path / "b"), "--rebuild",
                       "--data-dir", str(data), *TINY)
    assert code == 0 and out.count("4 embedded") == 2
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert "8 vectors" in out


def test_search_with_query_expansion(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    code, out, _ = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "--qe", "2",
                       "--json", "--data-dir", str(data))
    hits = json.loads(out)
    assert code == 0 and len(hits) == 12 and hits[0]["path"].endswith("img00.PNG")


def test_whiten_learns_applies_and_relearns(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY, "--dba", "0")
    query = library / "sub1" / "img04.PNG"
    code, out, _ = run(capsys, "whiten", "--dim", "8", "--data-dir", str(data))
    assert code == 0 and "dim 8" in out
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert "dim:       8" in out and "12 vectors" in out
    code, out, _ = run(capsys, "search", str(query), "--json", "--data-dir", str(data))
    hits = json.loads(out)
    assert code == 0 and hits[0]["path"] == str(query.resolve()) and hits[0]["score"] > 0.999
    # learning again re-embeds from unwhitened descriptors first
    code, out, _ = run(capsys, "whiten", "--data-dir", str(data))
    assert code == 0 and "re-embedding 1 libraries" in out and "dim 11" in out
    code, out, _ = run(capsys, "whiten", "--off", "--data-dir", str(data))
    assert code == 0
    code, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert "dim:       64" in out
    # a model change drops the whitening instead of applying it to other descriptors
    run(capsys, "whiten", "--data-dir", str(data))
    code, _, err = run(capsys, "search", str(query), "--pooling", "mac", "--data-dir", str(data))
    assert code == 2 and "--rebuild" in err


def test_dba_is_on_by_default_and_kept_per_data_dir(library, tmp_path, capsys):
    data = tmp_path / "data"
    query = library / "sub1" / "img04.PNG"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    # --qe 0: DBA alone (the shipped search also expands the query)
    _, out, _ = run(capsys, "search", str(query), "--json", "--qe", "0", "--data-dir", str(data))
    augmented = json.loads(out)
    # each photo scores the better of its indexed and its augmented vector: the photo itself 1
    assert augmented[0]["path"] == str(query.resolve())
    assert augmented[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert (data / "index-dba").is_dir()
    code, _, _ = run(capsys, "index", str(library), "--dba", "0", "--data-dir", str(data), *TINY)
    _, out, _ = run(capsys, "search", str(query), "--json", "--qe", "0", "--data-dir", str(data))
    plain = json.loads(out)
    assert code == 0 and plain[0]["score"] == pytest.approx(1.0, abs=1e-4)
    with_dba = {h["path"]: h["score"] for h in augmented}
    gains = [with_dba[h["path"]] - h["score"] for h in plain if h["path"] in with_dba]
    assert min(gains) > -1e-5 and max(gains) > 1e-3  # DBA raised some photos' scores


def test_a_bug_is_one_line_on_the_console_and_the_traceback_in_the_log(
    library, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))

    def broken(args):
        raise RuntimeError("something internal broke")

    monkeypatch.setitem(cli.COMMANDS, "info", broken)
    code, out, err = run(capsys, "info", "--data-dir", str(tmp_path / "data"))
    assert code == 1
    log_file = tmp_path / "logs" / "imgsearch.log"
    assert f"RuntimeError: something internal broke. The details are in {log_file}" in err
    assert "Traceback" not in err
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback" in text and "something internal broke" in text and "in broken" in text


def test_verbose_shows_debug_messages(library, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))
    code, _, err = run(capsys, "index", str(library), "--data-dir", str(tmp_path / "d"), *TINY,
                       "--verbose")
    assert code == 0 and "DEBUG" in err
    code, out, err = run(capsys, "info", "--data-dir", str(tmp_path / "d"))
    assert code == 0 and "DEBUG" not in err
    assert f"log file:  {tmp_path / 'logs' / 'imgsearch.log'}" in out


def test_python_dash_m_prints_the_version(tmp_path):
    from imgsearch_gui import __version__

    for module in ("imgsearch_gui", "imgsearch_gui.cli"):
        done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"imgsearch {__version__}"


def test_unreadable_catalog_is_an_error_until_rebuild_moves_it_aside(library, tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    (data / "catalog.sqlite3").write_bytes(b"not a database" * 100)
    for wal in data.glob("catalog.sqlite3-*"):
        wal.unlink()
    code, _, err = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "--data-dir", str(data))
    assert code == 2 and "damaged" in err and "--rebuild" in err
    code, out, err = run(capsys, "index", str(library), "--rebuild", "--data-dir", str(data))
    assert code == 0 and "12 embedded" in out
    (aside,) = data.glob("damaged-*")
    assert f"moved to {aside}" in err
    assert (aside / "catalog.sqlite3").read_bytes() == b"not a database" * 100
    code, out, _ = run(capsys, "search", str(library / "sub0" / "img00.PNG"), "-k", "1",
                       "--data-dir", str(data))
    assert code == 0 and out.split()[-1].endswith("img00.PNG")


def test_whiten_with_too_few_photos_is_a_user_error(tmp_path, photo_factory, capsys):
    photo_factory("one/only.png", seed=1)
    data = tmp_path / "data"
    run(capsys, "index", str(tmp_path / "one"), "--data-dir", str(data), *TINY)
    code, _, err = run(capsys, "whiten", "--data-dir", str(data))
    assert code == 2
    assert "imgsearch: error: index at least two photos" in err and "Traceback" not in err


def test_whiten_dim_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["whiten", "--dim", "0", "--data-dir", str(tmp_path)])
    assert info.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_search_settings_are_recorded_by_index_and_used_by_search_and_eval(library, tmp_path,
                                                                           capsys):
    data = tmp_path / "data"
    run(capsys, "index", str(library), "--data-dir", str(data), *TINY)
    _, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert f"search:    DBA {registry.DEFAULT_DBA}, rotations on, alpha-QE {registry.DEFAULT_QE}" \
        in out
    code, _, _ = run(capsys, "index", str(library), "--no-rotations", "--qe", "0",
                     "--data-dir", str(data), *TINY)
    _, out, _ = run(capsys, "info", "--data-dir", str(data))
    assert code == 0 and "rotations off, alpha-QE off" in out
    _, out, _ = run(capsys, "eval", str(library), "--json", "--data-dir", str(data), *TINY)
    settings = json.loads(out)["settings"]
    assert settings["rotations"] is False and settings["qe"] == 0  # eval measures them too
