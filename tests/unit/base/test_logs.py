"""Logging: a rotating file in the log dir, quiet console, --verbose, an unwritable log dir."""

from __future__ import annotations

import logging

from imgsearch_gui.base import logs


def test_file_gets_info_console_gets_warnings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))
    path = logs.setup_logging("prog")
    assert path == tmp_path / "logs" / "prog.log" == logs.current_log_file()
    log = logging.getLogger("imgsearch_gui.somewhere")
    log.debug("a debug line")
    log.info("an info line")
    log.warning("a warning line")
    text = path.read_text(encoding="utf-8")
    assert "prog 0" in text and "started" in text  # the header names the version
    assert "an info line" in text and "a warning line" in text and "a debug line" not in text
    err = capsys.readouterr().err
    assert "a warning line" in err and "an info line" not in err


def test_verbose_logs_debug_everywhere_and_setup_is_idempotent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path))
    logs.setup_logging("prog")
    path = logs.setup_logging("prog", verbose=True)
    ours = [h for h in logging.getLogger().handlers if getattr(h, logs._MARK, False)]
    assert len(ours) == 2
    logging.getLogger("x").debug("details")
    assert "details" in path.read_text(encoding="utf-8")
    assert "details" in capsys.readouterr().err


def test_the_file_rotates(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    path = logs.setup_logging("prog")
    for i in range(200):
        logging.getLogger("x").info("line %d %s", i, "x" * 50)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["prog.log", "prog.log.1", "prog.log.2", "prog.log.3"]
    assert path.stat().st_size <= 2_200


def test_unwritable_log_dir_falls_back_to_the_console(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(blocker / "logs"))
    assert logs.setup_logging("prog") is None
    assert logs.current_log_file() is None
    assert "log" in capsys.readouterr().err


def test_fault_log_beside_the_log(tmp_path, monkeypatch):
    import faulthandler

    calls = []
    monkeypatch.setattr(faulthandler, "enable", lambda file, all_threads: calls.append(
        (file.name, all_threads)))
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path))
    path = logs.enable_fault_log("prog")
    assert path == tmp_path / "prog-faults.log" and path.exists()
    assert calls == [(str(path), True)]
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(blocker / "logs"))
    assert logs.enable_fault_log("prog") is None  # no crash: just no fault log


def test_a_file_name_that_is_not_utf8_is_logged_escaped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))
    path = logs.setup_logging("prog")
    name = "caf\udce9.jpg"  # os.fsdecode(b"caf\xe9.jpg")
    logging.getLogger("imgsearch_gui.somewhere").info("skipped %s", name)
    assert "skipped caf\\udce9.jpg" in path.read_text(encoding="utf-8")
    assert "Logging error" not in capsys.readouterr().err
