"""The duplicate finder through ImageLibrary: groups, the kept copy, not-duplicates, forgetting
trashed files, older catalogs, cancel."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from photo_edits import cropped, mirrored, recoloured, resaved, turned

from imgsearch_gui.app.duplicates import DuplicateReport, FinderOptions, GroupKind, parse_rule
from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.base.errors import UserError
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress


def index(lib: ImageLibrary, root) -> IndexReport:
    events = list(lib.index_library(root))
    assert isinstance(events[-1], IndexReport)
    return events[-1]


def find(lib: ImageLibrary, **options) -> DuplicateReport:
    events = list(lib.find_duplicates(FinderOptions(**options)))
    assert all(isinstance(e, Progress) for e in events[:-1])
    assert isinstance(events[-1], DuplicateReport)
    return events[-1]


@pytest.fixture
def photos(tmp_path, real_photos):
    """astronaut with four edited copies and an identical file; chelsea with a turned copy; two
    unrelated photos."""
    lib = tmp_path / "photos"
    (lib / "sub dir").mkdir(parents=True)
    small = {n: real_photos[n].resize((256, round(256 * real_photos[n].height / real_photos[n].width)))
             for n in ("astronaut", "chelsea", "coffee", "rocket")}
    small["astronaut"].save(lib / "astronaut.png")
    resaved(small["astronaut"]).save(lib / "sub dir" / "astro small.jpg", quality=60)
    mirrored(small["astronaut"]).save(lib / "astro-mirror.jpg", quality=90)
    cropped(small["astronaut"]).save(lib / "astro-crop.jpg", quality=90)
    recoloured(small["astronaut"]).save(lib / "astro-colour.jpg", quality=90)
    shutil.copyfile(lib / "astronaut.png", lib / "sub dir" / "astronaut (1).png")
    small["chelsea"].save(lib / "chelsea.jpg", quality=95)
    turned(small["chelsea"]).save(lib / "chelsea-turned.jpg", quality=80)
    small["coffee"].save(lib / "coffee.jpg")
    small["rocket"].save(lib / "rocket.jpg")
    return lib


@pytest.fixture
def library(tmp_path, embedder, photos):
    lib = ImageLibrary(tmp_path / "data", embedder)
    index(lib, photos)
    yield lib
    lib.close()


def names(group) -> set[str]:
    return {os.path.basename(f.path) for f in group.files}


def test_copies_are_grouped_and_other_photos_are_not(library):
    report = find(library)
    groups = {frozenset(names(g)) for g in report.groups}
    assert groups == {
        frozenset({"astronaut.png", "astronaut (1).png", "astro small.jpg", "astro-mirror.jpg",
                   "astro-crop.jpg", "astro-colour.jpg"}),
        frozenset({"chelsea.jpg", "chelsea-turned.jpg"}),
    }
    assert report.photos == 10


def test_the_kept_copy_follows_the_rule_and_identical_files_say_so(library):
    report = find(library)
    astro = next(g for g in report.groups if "astronaut.png" in names(g))
    assert astro.kind == GroupKind.NEAR
    kept = astro.kept
    assert os.path.basename(kept.path) in {"astronaut.png", "astronaut (1).png"}  # most pixels
    assert [f.keep for f in astro.files].count(True) == 1
    twin = next(f for f in astro.files if f.path != kept.path and f.path.endswith(".png"))
    assert twin.identical and twin.score == 1.0
    assert all(0 < f.score <= 1 for f in astro.files)
    assert astro.freed == sum(f.size for f in astro.files if not f.keep)
    # groups are ordered by what they free
    assert [g.freed for g in report.groups] == sorted((g.freed for g in report.groups), reverse=True)
    # largest file first: the PNGs (lossless, bigger) still win; newest: the rule is honoured
    newest = find(library, keep_rule=parse_rule("newest"))
    astro_new = next(g for g in newest.groups if "astronaut.png" in names(g))
    assert astro_new.kept.mtime_ns == max(f.mtime_ns for f in astro_new.files)


def test_an_exact_only_group_is_exact(tmp_path, embedder, real_photos):
    folder = tmp_path / "p"
    folder.mkdir()
    real_photos["coffee"].resize((200, 150)).save(folder / "a.jpg")
    shutil.copyfile(folder / "a.jpg", folder / "b.jpg")
    real_photos["rocket"].resize((200, 150)).save(folder / "c.jpg")
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        index(lib, folder)
        (group,) = find(lib).groups
    assert group.kind == GroupKind.EXACT and names(group) == {"a.jpg", "b.jpg"}


def test_not_duplicates_is_remembered_by_content(library, photos):
    chelsea = [str(photos / "chelsea.jpg"), str(photos / "chelsea-turned.jpg")]
    assert library.mark_not_duplicates(chelsea) == 1
    assert all("chelsea.jpg" not in names(g) for g in find(library).groups)
    # it holds after a rename (the content is the same)
    os.rename(photos / "chelsea-turned.jpg", photos / "renamed.jpg")
    index(library, photos)
    assert all("chelsea.jpg" not in names(g) for g in find(library).groups)
    with pytest.raises(UserError):
        library.mark_not_duplicates([str(photos / "nope.jpg"), chelsea[0]])


def test_trashed_files_leave_the_catalog_and_the_search(library, photos):
    gone = photos / "astro-crop.jpg"
    gone.unlink()
    assert library.forget_files([str(gone)]) == 1
    assert str(gone) not in {f.path for f in library.catalog.all_files()}
    (hits,) = library.search_vectors(library.store.get(library.store.labels()[:1]), k=20)
    assert hits and str(gone) not in {h.path for h in hits}
    assert all("astro-crop.jpg" not in names(g) for g in find(library).groups)


def test_a_changed_or_missing_file_is_not_offered(library, photos):
    (photos / "astro-mirror.jpg").unlink()
    with open(photos / "astro-colour.jpg", "ab") as fh:
        fh.write(b"x")
    report = find(library)
    astro = next(g for g in report.groups if "astronaut.png" in names(g))
    assert not names(astro) & {"astro-mirror.jpg", "astro-colour.jpg"}
    assert {os.path.basename(s.path) for s in report.unreadable} == {"astro-mirror.jpg",
                                                                     "astro-colour.jpg"}


def test_roots_limit_the_search(library, photos):
    report = find(library, roots=(str(photos / "sub dir"),))
    (group,) = report.groups
    assert names(group) == {"astronaut (1).png", "astro small.jpg"}


def test_an_older_catalog_without_thumbprints_still_finds_turned_copies(tmp_path, library):
    db = sqlite3.connect(tmp_path / "data" / "catalog.sqlite3")
    db.execute("UPDATE vectors SET thumb = NULL")
    db.commit()
    db.close()
    report = find(library)
    assert any(names(g) == {"chelsea.jpg", "chelsea-turned.jpg"} for g in report.groups)
    assert len(library.catalog.thumbprints()) == len(library.store)  # stored for next time


def test_cancel_stops_without_a_report(library):
    cancel = CancelToken()
    events = []
    for event in library.find_duplicates(FinderOptions(), cancel):
        events.append(event)
        if isinstance(event, Progress) and event.stage == "verify":
            cancel.cancel()
    assert not any(isinstance(e, DuplicateReport) for e in events)


def test_keep_rule_names_are_checked():
    assert parse_rule("size, oldest") == ("size", "oldest")
    with pytest.raises(UserError, match="unknown keep rule"):
        parse_rule("biggest")


def test_similar_photos_are_grouped_only_when_asked(library):
    """Look-alikes (with the random-weight test model every photo looks alike) are their own
    kind of group, each copy group standing in by its kept file; never mixed into copies."""
    plain = find(library)
    assert all(g.kind != GroupKind.SIMILAR for g in plain.groups)
    report = find(library, similar=True, similar_cosine=0.0)
    copies = [g for g in report.groups if g.kind != GroupKind.SIMILAR]
    assert [names(g) for g in copies] == [names(g) for g in plain.groups]
    similar = [g for g in report.groups if g.kind == GroupKind.SIMILAR]
    assert similar and report.groups[-1].kind == GroupKind.SIMILAR  # listed after the copies
    members = set().union(*(names(g) for g in similar))
    assert {"coffee.jpg", "rocket.jpg"} <= members
    kept = {os.path.basename(g.kept.path) for g in copies}
    assert members & kept and not members & {"astro-crop.jpg", "astro small.jpg"}


def test_not_duplicates_holds_even_through_a_third_copy(library, photos):
    """A and C said apart, both verified against B: they must not end up in one group, and no
    score may come from a pair that was not compared with the kept file's chain."""
    apart = [str(photos / "astronaut.png"), str(photos / "astro-colour.jpg")]
    library.mark_not_duplicates(apart)
    for group in find(library).groups:
        assert not {os.path.basename(p) for p in apart} <= names(group), names(group)


def test_turned_and_mirrored_copies_come_from_the_thumbprints(library):
    """With no candidate from the index at all (cosine > 1), the thumbprints in 8 orientations
    still pair a turned and a mirrored copy with their original (crops need the index)."""
    report = find(library, min_cosine=1.01)
    groups = [names(g) for g in report.groups]
    assert {"chelsea.jpg", "chelsea-turned.jpg"} in groups
    astro = next(g for g in groups if "astronaut.png" in g)
    assert "astro-mirror.jpg" in astro and "astro-crop.jpg" not in astro


def test_nested_libraries_and_hard_links_count_each_file_once(tmp_path, embedder, photos):
    os.link(photos / "coffee.jpg", photos / "coffee link.jpg")
    with ImageLibrary(tmp_path / "data2", embedder) as lib:
        index(lib, photos)
        index(lib, photos / "sub dir")  # a library inside a library
        report = find(lib)
    paths = [f.path for g in report.groups for f in g.files]
    assert len(paths) == len(set(paths))
    assert not any("coffee" in n for g in report.groups for n in names(g))
    assert report.photos == 10  # the link and the nested library's files once


def test_a_sliver_of_a_photo_is_no_crash(tmp_path, embedder, real_photos):
    folder = tmp_path / "p"
    folder.mkdir()
    real_photos["rocket"].resize((2400, 6)).save(folder / "sliver.png")
    real_photos["rocket"].resize((2400, 6)).save(folder / "sliver copy.jpg", quality=70)
    real_photos["coffee"].resize((200, 150)).save(folder / "coffee.jpg")
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        index(lib, folder)
        report = find(lib)
    assert report.photos == 3


def test_a_raw_is_kept_over_its_jpeg_export(tmp_path, embedder, real_photos):
    from photos import make_dng

    folder = tmp_path / "p"
    (folder / "export").mkdir(parents=True)
    img = real_photos["astronaut"].resize((192, 192))
    make_dng(folder / "IMG_0001.DNG", img, preview=img.resize((96, 96)))  # PIL sees the preview
    img.save(folder / "export" / "IMG_0001.jpg", quality=95)
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        index(lib, folder)
        (group,) = find(lib).groups
    assert group.kept.path.endswith("IMG_0001.DNG")
    assert (group.kept.width, group.kept.height) == (192, 192)
