"""The words and numbers the window shows, as plain functions: no Qt, so they are tested without a
display (``tests/unit/ui``) and the widgets stay about layout and events.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from imgsearch_gui.base import registry
from imgsearch_gui.base.bands import Band
from imgsearch_gui.base.images import FORMATS, RAW_FORMAT, SUPPORTED_EXTENSIONS, is_supported
from imgsearch_gui.base.pathtext import display_path  # shared with the command line
from imgsearch_gui.base.types import IndexReport, Progress, SearchHit

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]

#: The file dialog's filter for query photos. Qt matches the patterns case-sensitively on Linux,
#: so each extension is listed in lower and in upper case (cameras write IMG_0001.JPG, .CR2).
IMAGE_FILTER = "Images ({})".format(" ".join(
    f"*{e} *{e.upper()}" for e in sorted(SUPPORTED_EXTENSIONS)))


def fmt_duration(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; a dash when unknown (None, NaN or negative)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def index_summary(report: IndexReport) -> str:
    """One sentence for the status bar once a library is indexed (or the job was cancelled),
    naming only what happened, as a person would say it."""
    name = display_path(report.library)
    if report.offline:
        return (f"{name} is offline (not found, or empty: an unplugged drive?). Its "
                f"{report.indexed:,} photos stay in the index; nothing was removed.")
    changes = [c for n, c in (
        (report.embedded, _count(report.embedded, "new photo")),
        (report.moved, f"{report.moved:,} moved or renamed"),
        (report.removed, f"{report.removed:,} removed"),
        (report.duplicates, _count(report.duplicates, "duplicate")),
    ) if n]
    took = (f" in {fmt_duration(report.seconds)} ({report.images_per_s:.1f} photos/s)"
            if report.embedded else "")
    if report.cancelled:
        done = f"after {', '.join(changes)}" if changes else "before anything new was indexed"
        head = (f"Indexing {name} was cancelled {done}{took}; what was done is kept, the rest "
                "is indexed next time")
    elif changes:
        unchanged = f" ({report.unchanged:,} unchanged)" if report.unchanged else ""
        head = f"Indexed {name}: {', '.join(changes)}{unchanged}{took}"
    else:
        head = f"{name} is up to date: {_count(report.unchanged, 'photo')}, nothing new"
    notes = []
    if report.skipped:
        notes.append(f"{_count(len(report.skipped), 'file')} could not be used (Library ▸ Show "
                     "skipped files)")
    if report.unreadable:
        notes.append(f"{_count(len(report.unreadable), 'folder')} could not be read (their photos "
                     "are kept)")
    return head + "".join(f". {n[0].upper()}{n[1:]}" for n in notes) + "."


def query_label(files: Sequence[str]) -> str:
    """The caption of a query made of files: the path, or the first names of a mean query."""
    if len(files) == 1:
        return display_path(files[0])
    return f"{len(files)} photos (mean query): " + ", ".join(
        display_path(os.path.basename(f)) for f in files[:4]
    ) + ("…" if len(files) > 4 else "")


def region_label(label: str, box: Box | None) -> str:
    """The caption of a region search: the query's caption and the region's size and corner."""
    if box is None:
        return label
    return f"{label}\nregion {box[2] - box[0]}×{box[3] - box[1]} at ({box[0]}, {box[1]})"


def results_summary(fetched: Sequence[SearchHit], shown: int, count: int, min_score: float,
                    has_query: bool) -> str:
    """Above the grid: how many results are shown and how many the minimum score hides."""
    if not fetched:
        return "No results" if has_query else "No query yet"
    hidden = len([h for h in fetched[:count] if h.score < min_score])
    extra = f" ({hidden} below {min_score:.2f} hidden)" if hidden else ""
    head = f"{shown} result{'' if shown == 1 else 's'}{extra}"
    visible = [h for h in fetched[:count] if h.score >= min_score]
    if not visible:
        return head
    best = visible[0]
    if best.band is not None and best.band != Band.SAME_PHOTO:
        # what the best hit is, so that a query with no real match says so
        verdict = ("no close match: even the best is unrelated" if best.band == Band.UNRELATED
                   else f"best: {best.band}")
        return f"{head} · {verdict}"
    if best.band == Band.SAME_PHOTO:
        same = sum(1 for h in visible if h.band == Band.SAME_PHOTO)
        return f"{head} · {same} the same photo"
    return head


def sort_paths(local: Sequence[str], remote: Sequence[str] = ()
               ) -> tuple[list[str], list[str], list[str]]:
    """(folders, photos, everything else) among dropped or pasted paths; ``remote`` are URLs."""
    folders = [p for p in local if os.path.isdir(p)]
    photos = [p for p in local if os.path.isfile(p) and is_supported(p)]
    others = [p for p in local if p not in folders and p not in photos] + list(remote)
    return folders, photos, others


def drop_hint(has_urls: bool, folders: Sequence[str], photos: Sequence[str]) -> str:
    """What a drop will do, in words (the overlay's text)."""
    if not has_urls:
        return "Drop to search with this image"
    if folders and not photos:
        return ("Drop to add this folder as a library" if len(folders) == 1
                else f"Drop to add these {len(folders)} folders as libraries")
    if len(photos) > 1:
        return f"Drop to search with these {len(photos)} photos"
    if photos:
        return "Drop to search with this photo"
    return "Not a photo or folder"


def _names(paths: Sequence[str]) -> str:
    return ", ".join(os.path.basename(p) or p for p in paths[:3])


def _missing(paths: Sequence[str]) -> list[str]:
    """The local paths among ``paths`` that do not exist (a typo, a moved file), not URLs."""
    return [p for p in paths if "://" not in p and not os.path.lexists(p)]


def _listed(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return f"{_names(paths)}{more}"


def ignored_text(others: Sequence[str]) -> str:
    """Photos were searched, these were not (a mixed drop)."""
    missing = _missing(others)
    rest = [p for p in others if p not in missing]
    parts = ([f"not found: {_listed(missing)}"] if missing else []) + (
        [f"not a photo: {_listed(rest)}"] if rest else [])
    return f"Ignored what is {'; '.join(parts)}."


def not_a_photo_text(others: Sequence[str]) -> str:
    """Nothing usable was dropped or given: say why (not found, or not a photo) and what works."""
    missing = _missing(others)
    if missing and len(missing) == len(others):
        return (f"Not found: {_listed(missing)}. Was it moved or deleted? Check the path, or "
                "drop the photo on the window.")
    names = [f.extensions[0].lstrip(".").upper() for f in FORMATS if f is not RAW_FORMAT]
    exts = f"{', '.join(names)} or {RAW_FORMAT.name}"
    found = [p for p in others if p not in missing]
    lost = f" (not found: {_listed(missing)})" if missing else ""
    return (f"Not a photo: {_listed(found)}{lost}. Drop image files ({exts}) to search, or a "
            "folder to add it as a library.")


def copied_text(count: int) -> str:
    return f"Copied {count} path{'s' if count != 1 else ''}."


def score_text(score: float) -> str:
    """A cosine similarity as the grid shows it."""
    return f"{score:.3f}"


def hit_caption(hit: SearchHit) -> str:
    """The file name under a thumbnail; a hit whose library is offline says so."""
    name = display_path(os.path.basename(hit.path))
    return f"{name} (offline)" if hit.offline else name


def placeholder_text(hit: SearchHit, failed: bool) -> str:
    """What a cell shows until (or instead of) its thumbnail: a photo of an offline library cannot
    be read now, which is not the photo's fault."""
    if hit.offline:  # failed: no thumbnail of it was cached (never shown before)
        return "offline\nno thumbnail cached" if failed else "offline"
    return "unreadable" if failed else "…"


#: The badge on the cached thumbnail of a hit whose library is offline.
OFFLINE_BADGE = "offline"


def file_size_text(size: int) -> str:
    """A file's size as a file manager shows it: "812 bytes", "48 KB", "2.4 MB" (1 KB = 1000
    bytes)."""
    if size < 1000:
        return f"{size} byte{'' if size == 1 else 's'}"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def hit_tooltip(hit: SearchHit, size: int | None = None, modified: float | None = None,
                missing: bool = False) -> str:
    """A hit's tooltip: its full path (two photos of the same name in two folders are told
    apart), its size and modification time where they were looked up (``size``, ``modified``:
    a timestamp; ``missing``: the file was not found), its library, rank, score and band."""
    lines = [display_path(hit.path)]
    if missing:
        lines.append("not found: moved or deleted since it was indexed?")
    elif size is not None or modified is not None:
        facts = [file_size_text(size)] if size is not None else []
        if modified is not None:
            facts.append(f"modified {time.strftime('%Y-%m-%d %H:%M', time.localtime(modified))}")
        lines.append(" · ".join(facts))
    if hit.library:
        lines.append(f"library {display_path(hit.library)}")
    band = f" · {hit.band}" if hit.band is not None else ""
    lines.append(f"#{hit.rank} · score {score_text(hit.score)}{band}")
    if hit.offline:
        lines.append("offline: its library is not reachable (an unplugged drive?); the thumbnail "
                     "is the one cached when it was last shown")
    return "\n".join(lines)


def library_label(root: str, offline: bool) -> str:
    """A library's entry in the Library menu: its folder, marked when it is offline."""
    shown = display_path(root)
    return f"{shown} — offline (not connected?)" if offline else shown


def library_tip(root: str, offline: bool) -> str:
    """The tooltip of a library's entry: what offline means, and what brings it back."""
    if not offline:
        return f"{display_path(root)}\nClick to open the folder."
    return (f"{display_path(root)} is offline: the folder is not reachable (an unplugged drive, "
            "a network share that is down?).\nIts photos stay in the index and are still "
            "found, with the thumbnails cached when they were last shown.\nConnect the drive; "
            "the library catches up when it is back (or Library ▸ Re-index all, F5).")


def offline_button_text(count: int) -> str:
    """The status bar's note while libraries are offline."""
    return f"⏏ {count} librar{'y' if count == 1 else 'ies'} offline"


def offline_button_tip(roots: Sequence[str]) -> str:
    names = "\n".join(f"  {display_path(r)}" for r in sorted(roots)[:8])
    more = f"\n  and {len(roots) - 8} more" if len(roots) > 8 else ""
    return (f"Not reachable (an unplugged drive?):\n{names}{more}\nTheir photos are still "
            "found, marked offline. Connect the drive; the library catches up when it is "
            "back.\nClick to check again.")


def back_online_text(roots: Sequence[str], still_offline: int) -> str:
    """After a click on the offline note: which libraries are back (being indexed to catch
    up), or that they are still not reachable."""
    if not roots:
        if not still_offline:
            return "Every library is online."
        return (f"Still offline: {still_offline} librar{'y' if still_offline == 1 else 'ies'}."
                " Connect the drive, then click again.")
    names = ", ".join(display_path(r) for r in roots[:3]) + ("…" if len(roots) > 3 else "")
    return f"Back online: {names}. Catching up (new, changed and removed photos)…"


#: the score bands in the order of the legend above the results, with what each means
BAND_MEANINGS = (
    ("same photo", "the same photo (a copy, resized or re-saved)"),
    ("very similar", "an edited copy, or the same object or place"),
    ("similar", "often the same kind of thing"),
    ("unrelated", "nothing in common worth a look"),
)


def band_legend_tip(bands) -> str:
    """The legend's tooltip: each band's meaning and its score range for ``bands`` (the shipped
    model's :class:`~imgsearch_gui.base.bands.ScoreBands`), or that other models have none."""
    lines = ["Scores are cosine similarity (1 = identical). The colour says what a score means:"]
    if bands is None:
        return "\n".join(lines[:1] + ["(not measured for this model: scores are shown in slate)"])
    ranges = {"same photo": f"{bands.same_photo:.3f} and above",
              "very similar": f"{bands.very_similar:.2f} to {bands.same_photo:.3f}",
              "similar": f"{bands.similar:.2f} to {bands.very_similar:.2f}",
              "unrelated": f"below {bands.similar:.2f}"}
    lines += [f"  {name}: {ranges[name]} — {meaning}" for name, meaning in BAND_MEANINGS]
    return "\n".join(lines + ["(measured for the default model and search; other models are "
                              "shown in slate)"])


def score_band(hit: SearchHit) -> str:
    """The colour class of a hit's score badge: its band's name, or "unknown" for a model whose
    bands were not measured (``base/bands.py``)."""
    return str(hit.band) if hit.band is not None else "unknown"


def is_under(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (False across drives)."""
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == \
            os.path.abspath(root)
    except ValueError:
        return False


def progress_stats(p: Progress) -> str:
    """The indexing panel's one-line state: waiting for another writer, scanning (with the count
    found so far), saving, or the embedding rate and ETA."""
    if p.stage == "wait":
        return "waiting for another process to finish writing…"
    if p.stage == "scan" or p.total <= 0:
        return f"scanning… {p.done:,} files found" if p.done else "scanning…"
    if p.stage == "save":
        return "saving…"
    rate = f"{p.images_per_s:.1f} images/s" if p.images_per_s else "–"
    return f"{rate} · ETA {fmt_duration(p.eta_s)}"


def runtime_label(runtime: str) -> str:
    """A runtime's entry in the settings dialog: the registry's label, marking the default."""
    return registry.runtime_label(runtime)


def runtime_name(runtime: str) -> str:
    """A runtime's short name ("OpenVINO", "PyTorch"): its registry label up to the details in
    brackets, so the status bar and the settings dialog name it alike."""
    info = registry.RUNTIMES.get(runtime)
    return info.label.split(" (")[0] if info is not None else runtime


def model_ready_text(backbone: str, runtime: str | None) -> str:
    """The status bar's model label once it is loaded: which network, and what runs it."""
    return f"{backbone} · ready" + (f" · {runtime_name(runtime)}" if runtime else "")


def runtime_note(asked: str, used: str | None) -> str:
    """A line for the model label's tooltip: what runs the network, and why not the runtime that
    was chosen (the embedder fell back to PyTorch, ml/runtime.py)."""
    if not used:
        return ""
    note = f"Runs in {runtime_name(used)}."
    if asked not in (registry.DEFAULT_RUNTIME, used):
        note += (f" {runtime_name(asked)} was chosen but cannot run here (it needs the CPU "
                 "device and the openvino package; the log says why).")
    return note
