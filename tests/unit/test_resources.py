"""What ships with the package: icons, desktop entry, AppStream metadata, demo photos."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from collections import Counter

from PIL import Image

from imgsearch_gui import __version__, resources
from imgsearch_gui.base.images import load_image


def test_icons_exist_in_every_size():
    svg = ET.parse(resources.icon_svg()).getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 256 256"
    for size in resources.ICON_SIZES:
        with Image.open(resources.icon_png(size)) as image:
            assert image.size == (size, size) and image.mode == "RGBA"
            # transparent corners (rounded square), opaque middle
            assert image.getpixel((0, 0))[3] == 0 and image.getpixel((size // 2, size // 2))[3] > 200


def test_desktop_entry_has_what_menus_need():
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(resources.desktop_file(), encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "imgsearch"
    assert d["Exec"].split()[0] == "imgsearch-gui" and d["Exec"].endswith("%F")
    assert d["Icon"] == resources.APP_ID
    assert d["Terminal"] == "false"
    for key in ("Categories", "Keywords", "MimeType"):
        assert d[key].endswith(";"), key
    assert "image/jpeg" in d["MimeType"].split(";")


def test_metainfo_matches_the_app():
    root = ET.parse(resources.metainfo_file()).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == resources.APP_ID
    assert root.findtext("launchable") == resources.desktop_file().name
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == "MIT"
    assert root.find("description/p") is not None
    releases = [r.get("version") for r in root.iter("release")]
    assert __version__ in releases, "add a <release> for the new version"


def test_demo_photos_are_small_real_photos_with_a_licence():
    photos = resources.demo_photos()
    assert 24 <= len(photos) <= 60
    classes = Counter(p.stem.rsplit("-", 1)[0] for p in photos)
    assert len(classes) == 10 and min(classes.values()) >= 3
    total = 0
    for path in photos:
        image = load_image(path)
        assert max(image.size) <= 320 and min(image.size) >= 160
        total += path.stat().st_size
    assert total < 1_000_000
    licence = (resources.demo_dir() / "LICENSE.txt").read_text(encoding="utf-8")
    assert "CC0 1.0 Universal" in licence
    assert "clothing-dataset" in (resources.demo_dir() / "README.txt").read_text(encoding="utf-8")
