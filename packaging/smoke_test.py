"""Smoke test of the one-folder bundle, run before each release (not part of the test suite).

    python3 packaging/smoke_test.py             # build with packaging/build.sh, then test
    python3 packaging/smoke_test.py --no-build  # test dist/imgsearch as it is

Runs the bundle as a user would, from an empty temporary home (no access to the source tree or
the venv): both programs print the version; the app starts offscreen with ``--demo``, indexes the
demo photos and searches with one of them (read from its log), and stops cleanly on SIGTERM; the
bundled CLI indexes the demo photos, finds each query's siblings and runs the model in OpenVINO
(its plugins made it into the bundle); ``desktop-entry`` points the
menu entry at the bundle. Needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'__version__ = "([^"]+)"',
                    (ROOT / "imgsearch_gui" / "__init__.py").read_text()).group(1)


class SmokeError(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeError(what)
    print(f"  ok  {what}")


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SmokeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def gui_demo(gui: Path, env: dict[str, str], home: Path, timeout: float) -> None:
    log_file = Path(env["IMGSEARCH_LOG_DIR"]) / "imgsearch-gui.log"
    started = time.monotonic()
    proc = subprocess.Popen([str(gui), "--demo"], env=env, cwd=home,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while True:
            text = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
            found = re.search(r"query 1: (\d+) hits", text)
            if found:
                break
            if " ERROR " in text:
                raise SmokeError(f"the app logged an error:\n{text}")
            if proc.poll() is not None:
                raise SmokeError(f"the app exited ({proc.returncode}) before searching:\n"
                                 f"{proc.stdout.read()}\n{text}")
            if time.monotonic() - started > timeout:
                raise SmokeError(f"no demo search within {timeout:.0f} s:\n{text}")
            time.sleep(0.5)
        seconds = time.monotonic() - started
        check("Indexed " in text and "40 new" in text, "the app indexed the 40 demo photos")
        check(int(found.group(1)) == 40, f"the app's demo search returned 40 hits ({seconds:.1f} s "
                                         "after start)")
        check("ERROR" not in text and "Traceback" not in text, "no error in the app's log")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        check(code == 0, f"the app stopped cleanly on SIGTERM (exit status {code})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def cli_demo(cli: Path, demo: Path, env: dict[str, str], home: Path) -> None:
    data = home / "cli-data"
    started = time.monotonic()
    out = run([str(cli), "index", str(demo), "--data-dir", str(data)], env, home)
    check("40 embedded" in out, f"the CLI indexed the demo photos ({time.monotonic() - started:.1f} s)")
    queries = [demo / "shoes-1.jpg", demo / "pants-1.jpg"]
    out = run([str(cli), "search", *map(str, queries), "-k", "4", "--json", "--data-dir", str(data)],
              env, home)
    for query, line in zip(queries, out.splitlines(), strict=True):
        names = [Path(hit["path"]).name for hit in json.loads(line)]
        same = [n for n in names[1:] if n.rsplit("-", 1)[0] == query.stem.rsplit("-", 1)[0]]
        check(names[0] == query.name and len(same) >= 2,
              f"{query.name}: itself first and {len(same)} of its class in the next 3 ({names})")
    out = run([str(cli), "info", "--data-dir", str(data)], env, home)
    runtime = next((line.split()[-1] for line in out.splitlines() if line.startswith("runtime:")), "")
    check(runtime == "openvino", f"the bundle runs the model in OpenVINO on the CPU (runtime: {runtime})")


def desktop_entry(cli: Path, gui: Path, env: dict[str, str], home: Path) -> None:
    run([str(cli), "desktop-entry", "--prefix", str(home / "share")], env, home)
    entry = (home / "share" / "applications" / "org.imgsearch.ImgSearch.desktop").read_text()
    check(f"Exec={gui.resolve()} %F" in entry, "desktop-entry points the menu at the bundle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="test dist/imgsearch as it is")
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "imgsearch")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the app's demo")
    args = parser.parse_args(argv)
    if not args.no_build:
        subprocess.run([str(ROOT / "packaging" / "build.sh")], check=True)
    bundle = args.bundle.resolve()
    exe = ".exe" if sys.platform == "win32" else ""
    gui, cli = bundle / f"imgsearch-gui{exe}", bundle / f"imgsearch{exe}"
    demo = next(bundle.rglob("imgsearch_gui/resources/demo"), None)
    with tempfile.TemporaryDirectory(prefix="imgsearch-smoke-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "VIRTUAL_ENV", "IMGSEARCH_", "XDG_"))}
        env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen",
                   IMGSEARCH_LOG_DIR=str(home / "logs"), IMGSEARCH_DATA_DIR=str(home / "data"),
                   XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
                   XDG_DATA_HOME=str(home / "share"), XDG_STATE_HOME=str(home / "state"))
        try:
            print(f"bundle {bundle}")
            check(gui.exists() and cli.exists(), "both programs are in the bundle")
            check(demo is not None and len(list(demo.glob("*.jpg"))) == 40,
                  "the demo photos are in the bundle")
            for program in (cli, gui):
                out = run([str(program), "--version"], env, home).strip()
                check(out == f"imgsearch {VERSION}", f"{program.name} --version: {out}")
            gui_demo(gui, env, home, args.timeout)
            cli_demo(cli, demo, env, home)
            if sys.platform.startswith("linux"):
                desktop_entry(cli, gui, env, home)
        except (SmokeError, subprocess.TimeoutExpired) as exc:
            print(f"SMOKE TEST FAILED: {exc}", file=sys.stderr)
            return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
