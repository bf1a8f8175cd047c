"""The odd-file zoo: one folder of real odd files, indexed with multi-scale on. The job finishes,
every readable photo is searchable (found by itself at rank 1), every unreadable one is reported
with a reason, and a second run embeds nothing. A name that is not valid UTF-8 comes back
byte-exact from the catalog and readably from ``imgsearch search`` (text and --json)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.base.types import IndexReport

REPO = Path(__file__).resolve().parents[3]
ODD_NAME = b"caf\xe9 \xff.png"  # Latin-1 bytes: not valid UTF-8


def _noise(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = (rng.random((max(1, h // 8), max(1, w // 8), 3)) * 255).astype(np.uint8)
    img = Image.fromarray(coarse).resize((w, h), Image.BILINEAR)
    return img.convert(mode) if mode != "RGB" else img


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def make_zoo(root: Path) -> tuple[list[bytes], dict[str, str]]:
    """(readable files as bytes paths, {unreadable file name: expected words of its reason})."""
    root.mkdir(parents=True)
    broot = os.fsencode(root)
    readable: list[bytes] = []

    def save(name: str | bytes, img: Image.Image, **kw) -> None:
        path = broot + b"/" + (name if isinstance(name, bytes) else name.encode())
        with open(path, "wb") as fh:
            img.save(fh, format=kw.pop("format", "PNG"), **kw)
        readable.append(path)

    save(ODD_NAME, _noise(48, 40, 1))
    save("thin-1x2000.png", _noise(1, 2000, 2))
    save("thin-2000x1.png", _noise(2000, 1, 3))
    save("thin-3x1000.png", _noise(3, 1000, 4))
    save("cmyk.jpg", _noise(60, 40, 5, "CMYK"), format="JPEG")
    sixteen = (np.asarray(_noise(50, 40, 6, "L"), dtype=np.uint16) * 257).astype(np.uint16)
    save("16bit.png", Image.fromarray(sixteen))
    pal = _noise(40, 40, 7).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette-alpha.png", pal, transparency=0)
    frames = [_noise(40, 30, 8 + i).convert("P") for i in range(3)]
    path = broot + b"/animated.gif"
    with open(path, "wb") as fh:
        frames[0].save(fh, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    readable.append(path)
    garbage_exif = b"Exif\x00\x00" + np.random.default_rng(9).bytes(300)
    (root / "garbage-exif.jpg").write_bytes(_jpeg(_noise(50, 50, 10), exif=garbage_exif))
    readable.append(broot + b"/garbage-exif.jpg")

    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is a text file, not a JPEG\n" * 20)
    whole = _jpeg(_noise(200, 150, 11))
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    unreadable = {"empty.jpg": "empty", "text.jpg": "not an image", "truncated.jpg": "truncated"}
    return readable, unreadable


@pytest.fixture(scope="module")
def multiscale_embedder():
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.embedder import load_embedder

    return load_embedder(EmbedderConfig(backbone="tiny", size=64, batch_size=4, workers=2,
                                        multiscale=True))


def _run(lib: ImageLibrary, root: Path) -> IndexReport:
    *_, rep = lib.index_library(root)
    assert isinstance(rep, IndexReport)
    return rep


def test_the_odd_file_zoo(tmp_path, multiscale_embedder, counting_embedder):
    root = tmp_path / "zoo"
    readable, unreadable = make_zoo(root)
    emb = counting_embedder(multiscale_embedder)
    lib = ImageLibrary(tmp_path / "data", emb)
    rep = _run(lib, root)
    assert not rep.cancelled
    skipped = {os.path.basename(s.path): s.reason for s in rep.skipped}
    assert set(skipped) == set(unreadable), skipped
    for name, words in unreadable.items():
        assert words in skipped[name].lower(), (name, skipped[name])
    indexed = {os.fsencode(f.path) for f in lib.catalog.all_files() if f.status == "indexed"}
    assert indexed == set(readable)  # byte-exact paths, the non-UTF-8 one included
    for path in readable:
        hits = lib.search(os.fsdecode(path), k=3)
        assert os.fsencode(hits[0].path) == path, (path, [h.path for h in hits])
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)

    emb.reset()
    again = _run(lib, root)
    assert emb.embedded() == set()  # nothing embedded again, not even the unreadable ones
    assert {os.path.basename(s.path) for s in again.skipped} == set(unreadable)
    lib.close()
    reopened = ImageLibrary(tmp_path / "data", emb)  # a new process: the paths read back exact
    assert {os.fsencode(f.path) for f in reopened.catalog.all_files()
            if f.status == "indexed"} == set(readable)
    reopened.close()


@pytest.mark.skipif(sys.platform != "linux", reason="bytes file names are POSIX")
def test_cli_search_shows_a_non_utf8_name(tmp_path):
    """In a real process (stdout is strict UTF-8): the text output shows the name with \\xNN
    escapes, --json stays valid UTF-8 JSON and gives the exact bytes in path_b64."""
    root = tmp_path / "photos"
    root.mkdir()
    odd = os.fsencode(root) + b"/" + ODD_NAME
    with open(odd, "wb") as fh:
        _noise(48, 40, 1).save(fh, format="PNG")
    _noise(48, 40, 2).save(root / "plain.png")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8",
           "LC_ALL": "C.UTF-8"}
    base = [sys.executable, "-m", "imgsearch_gui.cli"]
    data = ["--data-dir", str(tmp_path / "data")]

    def cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([*base, *args, *data], env=env, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        return done

    cli("index", str(root), "--backbone", "tiny", "--size", "64", "--multiscale", "--dba", "0")
    text = cli("search", odd, "-k", "2").stdout.decode("utf-8")  # strict: valid UTF-8
    assert text.splitlines()[0].endswith("caf\\xe9 \\xff.png")
    out = cli("search", odd, "-k", "2", "--json").stdout
    hits = json.loads(out.decode("utf-8"))
    assert hits[0]["path"].endswith("caf\\xe9 \\xff.png")
    assert base64.b64decode(hits[0]["path_b64"]) == odd
    assert hits[1]["path"] == str(root / "plain.png") and "path_b64" not in hits[1]


def test_the_window_shows_a_non_utf8_name_readably():
    """Qt silently drops lone surrogates (caf\\udce9.png would show as caf.png): the grid's name
    and tooltip show the bytes as \\xNN escapes; valid names are unchanged."""
    from imgsearch_gui.base.types import SearchHit
    from imgsearch_gui.ui.format import display_path, hit_tooltip, query_label

    odd = os.fsdecode(b"/p/" + ODD_NAME)
    assert display_path(odd) == "/p/caf\\xe9 \\xff.png"
    assert display_path("/p/Zoë 100% \\x.png") == "/p/Zoë 100% \\x.png"
    hit = SearchHit(path=odd, score=0.5, rank=1)
    hit_tooltip(hit).encode("utf-8")  # valid text
    assert hit_tooltip(hit).startswith("/p/caf\\xe9 \\xff.png\n")
    assert query_label([odd]) == "/p/caf\\xe9 \\xff.png"
    assert query_label([odd, "/p/b.png"]).endswith("caf\\xe9 \\xff.png, b.png")
