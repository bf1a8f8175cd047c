"""Generated test photos (importable from any test: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_photo(path: Path, seed: int, size: tuple[int, int] = (96, 72)) -> Path:
    """A small deterministic image with structure (blobs + stripes), distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.float32)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 25)
        colour = rng.uniform(0, 255, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        img[mask] = colour
    img += 40 * np.sin(xx / rng.uniform(2, 9))[..., None]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def stripes(path: Path, horizontal: bool, seed: int, noise: float = 0.0) -> Path:
    """A two-colour sine grating, horizontal or vertical: two visibly different classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:56, 0:72].astype(np.float32)
    v = np.sin((yy if horizontal else xx) * 2 * np.pi / rng.uniform(10, 18) + rng.uniform(0, 6))
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = a + (b - a) * ((v[..., None] + 1) / 2)
    if noise:
        img = img + rng.normal(0, noise, img.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def labelled_folder(root: Path, per_class: int, noise: float = 0.0) -> Path:
    """``root/horizontal`` and ``root/vertical`` gratings, plus one unreadable file."""
    for i in range(per_class):
        stripes(root / "horizontal" / f"h{i}.png", True, i, noise)
        stripes(root / "vertical" / f"v{i}.png", False, 100 + i, noise)
    (root / "vertical" / "broken.jpg").write_bytes(b"not an image")
    return root


# --- phone and camera formats: HEIC with an irot box, DNG with or without a preview -------------

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def quadrant(size: tuple[int, int] = (128, 64), colour: str = "red") -> Image.Image:
    """Grey with a coloured top-left quadrant: where the colour ends tells how a decoder turned
    the photo, and which colour tells which of two sources (a RAW's preview or its sensor data)
    it decoded."""
    w, h = size
    arr = np.full((h, w, 3), 60, dtype=np.uint8)
    arr[: h // 2, : w // 2] = COLOURS[colour]
    return Image.fromarray(arr)


def coloured_corner(image: Image.Image) -> str:
    """The one corner of ``image`` that is coloured, and its colour: "red tr", "blue tl"...
    ("" unless exactly one corner is)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.int32)
    h, w = arr.shape[:2]
    corners = {"tl": arr[h // 8, w // 8], "tr": arr[h // 8, w - 1 - w // 8],
               "bl": arr[h - 1 - h // 8, w // 8], "br": arr[h - 1 - h // 8, w - 1 - w // 8]}
    found = []
    for name, px in corners.items():
        top = int(np.argmax(px))
        if px[top] > 120 and px[top] - np.delete(px, top).max() > 80:
            found.append(f"{('red', 'green', 'blue')[top]} {name}")
    return found[0] if len(found) == 1 else ""


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the ISO-BMFF boxes in data[start:end]."""
    out = []
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos:pos + 4], "big")
        out.append((bytes(data[pos + 4:pos + 8]), pos, size))
        pos += size
    return out


def _grow(data: bytearray, offset: int, by: int) -> None:
    size = int.from_bytes(data[offset:offset + 4], "big")
    data[offset:offset + 4] = (size + by).to_bytes(4, "big")


def _shift_iloc(data: bytearray, iloc: int, after: int, by: int) -> None:
    """Move every file offset in the iloc box that points past ``after`` by ``by`` bytes."""
    version = data[iloc + 8]
    pos = iloc + 12
    offset_size, length_size = data[pos] >> 4, data[pos] & 15
    base_size, index_size = data[pos + 1] >> 4, (data[pos + 1] & 15) if version else 0
    pos += 2
    count_len = 4 if version == 2 else 2
    count = int.from_bytes(data[pos:pos + count_len], "big")
    pos += count_len

    def shift(at: int, n: int) -> None:
        value = int.from_bytes(data[at:at + n], "big")
        if n and value >= after:
            data[at:at + n] = (value + by).to_bytes(n, "big")

    for _ in range(count):
        pos += count_len  # item_ID
        method = 0
        if version:
            method = data[pos + 1] & 15
            pos += 2
        pos += 2  # data_reference_index
        file_based = method == 0
        if base_size and file_based:
            shift(pos, base_size)
        pos += base_size
        extents = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        for _ in range(extents):
            pos += index_size
            if not base_size and file_based:
                shift(pos, offset_size)
            pos += offset_size + length_size


def _thumbnail_items(data: bytearray, iref: int, iref_size: int) -> list[int]:
    """The items that an iref box says are thumbnails ('thmb' references)."""
    id_len = 2 if data[iref + 8] == 0 else 4
    return [int.from_bytes(data[o + 8:o + 8 + id_len], "big")
            for t, o, _s in _boxes(data, iref + 12, iref + iref_size) if t == b"thmb"]


def _associate(data: bytearray, ipma: int, items: set[int], index: int) -> int:
    """Append property ``index`` (essential) to the ipma entries of ``items``; bytes added."""
    assert index < 128 and not data[ipma + 11] & 1  # the one-byte association form
    id_len = 2 if data[ipma + 8] == 0 else 4
    pos, added = ipma + 16, 0
    for _ in range(int.from_bytes(data[ipma + 12:ipma + 16], "big")):
        item = int.from_bytes(data[pos:pos + id_len], "big")
        n = data[pos + id_len]
        if item in items:
            data[pos + id_len] = n + 1
            data[pos + id_len + 1 + n:pos + id_len + 1 + n] = bytes([0x80 | index])
            added += 1
            n += 1
        pos += id_len + 1 + n
    _grow(data, ipma, added)
    return added


def add_irot(heic: bytes, quarter_turns_ccw: int) -> bytes:
    """``heic`` with an ``irot`` box on its primary image and thumbnails, as iPhones store
    portrait photos: the pixels as the sensor saw them, and a rotation the decoder applies
    (pillow-heif writes none)."""
    data = bytearray(heic)
    top = {t: (o, s) for t, o, s in _boxes(data, 0, len(data))}
    meta, meta_size = top[b"meta"]
    kids = {t: (o, s) for t, o, s in _boxes(data, meta + 12, meta + meta_size)}
    pitm = kids[b"pitm"][0]
    items = {int.from_bytes(data[pitm + 12:pitm + (14 if data[pitm + 8] == 0 else 16)], "big")}
    if b"iref" in kids:
        items.update(_thumbnail_items(data, *kids[b"iref"]))
    iprp, iprp_size = kids[b"iprp"]
    props = {t: (o, s) for t, o, s in _boxes(data, iprp + 8, iprp + iprp_size)}
    ipco, ipco_size = props[b"ipco"]
    ipma = props[b"ipma"][0]
    index = len(_boxes(data, ipco + 8, ipco + ipco_size)) + 1  # 1-based property index
    added = _associate(data, ipma, items, index)  # ipma follows ipco: edit it first
    data[ipco + ipco_size:ipco + ipco_size] = (9).to_bytes(4, "big") + b"irot" + bytes(
        [quarter_turns_ccw & 3])
    _grow(data, ipco, 9)
    grown = 9 + added
    for box in (meta, iprp):
        _grow(data, box, grown)
    iloc = next(o for t, o, _s in _boxes(data, meta + 12, meta + meta_size + grown)
                if t == b"iloc")
    _shift_iloc(data, iloc, meta + meta_size, grown)
    return bytes(data)


_TIFF_TYPES = {1: "B", 3: "H", 4: "I"}  # BYTE, SHORT, LONG; 2 ASCII, 5 RATIONAL, 10 SRATIONAL


def _ifd(entries: dict[int, tuple[int, object]], at: int) -> bytes:
    """One little-endian TIFF IFD that will sit at file offset ``at``, its out-of-line values
    right after it (tags sorted, as TIFF requires)."""
    import struct

    values_at = at + 2 + 12 * len(entries) + 4
    head, extra = [struct.pack("<H", len(entries))], b""
    for tag in sorted(entries):
        typ, value = entries[tag]
        if typ == 2:
            raw = str(value).encode() + b"\0"
            count = len(raw)
        elif typ in (5, 10):
            count = len(value)
            raw = b"".join(struct.pack("<ii" if typ == 10 else "<II", *v) for v in value)
        else:
            count = len(value)
            raw = struct.pack(f"<{count}{_TIFF_TYPES[typ]}", *value)
        if len(raw) <= 4:
            head.append(struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\0"))
        else:
            head.append(struct.pack("<HHII", tag, typ, count, values_at + len(extra)))
            extra += raw + b"\0" * (len(raw) % 2)
    return b"".join(head) + struct.pack("<I", 0) + extra


def make_dng(path: Path, image: Image.Image, preview: Image.Image | None = None,
             orientation: int = 1, preview_exif: Image.Exif | None = None) -> Path:
    """A minimal DNG that LibRaw reads: ``image`` as a 12-bit RGGB mosaic (linear, sRGB
    primaries), with an EXIF-style ``orientation``; with ``preview``, a JPEG preview in IFD0 and
    the raw data in a SubIFD, as cameras and converters write them (without: no preview at all)."""
    import io
    import struct

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    h, w = rgb.shape[:2]
    lin = (rgb ** 2.2 * 4095).astype(np.uint16)
    cfa = np.empty((h, w), np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2] = lin[0::2, 0::2, 0], lin[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = lin[1::2, 0::2, 1], lin[1::2, 1::2, 2]
    buf = bytearray(b"II*\0\0\0\0\0")
    raw_at = len(buf)
    buf += cfa.tobytes()
    xyz_to_srgb = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
    dng = {0x10F: (2, "imgsearch"), 0x110: (2, "test"), 0x112: (3, [orientation]),
           0xC612: (1, [1, 4, 0, 0]), 0xC613: (1, [1, 1, 0, 0]), 0xC614: (2, "imgsearch test"),
           0xC621: (10, [(round(v * 10000), 10000) for v in xyz_to_srgb]),
           0xC628: (5, [(1, 1)] * 3), 0xC65A: (3, [21])}
    sensor = {0xFE: (4, [0]), 0x100: (4, [w]), 0x101: (4, [h]), 0x102: (3, [16]),
              0x103: (3, [1]), 0x106: (3, [32803]), 0x111: (4, [raw_at]), 0x115: (3, [1]),
              0x116: (4, [h]), 0x117: (4, [cfa.nbytes]), 0x11C: (3, [1]), 0x828D: (3, [2, 2]),
              0x828E: (1, [0, 1, 1, 2]), 0xC61A: (4, [0]), 0xC61D: (4, [4095])}
    if preview is None:
        ifd0 = {**sensor, **dng}
    else:
        jpeg = io.BytesIO()
        preview.convert("RGB").save(jpeg, "JPEG", quality=90,
                                    **({"exif": preview_exif} if preview_exif else {}))
        preview_at = len(buf)
        buf += jpeg.getvalue() + b"\0" * (len(jpeg.getvalue()) % 2)
        sub_at = len(buf)
        buf += _ifd(sensor, sub_at)
        pw, ph = preview.size
        ifd0 = {0xFE: (4, [1]), 0x100: (4, [pw]), 0x101: (4, [ph]), 0x102: (3, [8, 8, 8]),
                0x103: (3, [7]), 0x106: (3, [6]), 0x111: (4, [preview_at]), 0x115: (3, [3]),
                0x116: (4, [ph]), 0x117: (4, [len(jpeg.getvalue())]), 0x14A: (4, [sub_at]),
                **dng}
    ifd0_at = len(buf)
    buf += _ifd(ifd0, ifd0_at)
    struct.pack_into("<I", buf, 4, ifd0_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(buf))
    return path
