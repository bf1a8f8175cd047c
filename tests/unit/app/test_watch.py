"""The folder watcher with real file events (inotify here) and with the polling fallback."""

from __future__ import annotations

import errno
import queue
import threading
import time
from pathlib import Path

import pytest
from photos import make_photo

from imgsearch_gui.app import watch
from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.app.watch import ChangeBatch, FolderWatcher, PassFailed, Watching
from imgsearch_gui.base.errors import StorageWriteError
from imgsearch_gui.base.types import CancelToken, IndexReport


def write_image(path: Path, seed: int, size: int = 64) -> Path:
    return make_photo(path, seed, (size, size))


FAST = {"debounce_s": 0.2, "poll_interval_s": 0.2, "presence_interval_s": 0.2}


class Batches:
    def __init__(self) -> None:
        self.queue: queue.Queue[ChangeBatch] = queue.Queue()

    def __call__(self, batch: ChangeBatch) -> None:
        self.queue.put(batch)

    def next(self, timeout: float = 8.0) -> ChangeBatch:
        return self.queue.get(timeout=timeout)

    def drain(self, quiet: float = 0.5) -> None:
        """Forget the batches of a step (a write can be two batches on a busy machine)."""
        while not self.none_within(quiet):
            pass

    def none_within(self, seconds: float) -> bool:
        try:
            self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "photos"
    write_image(folder / "first.jpg", 0)
    return folder


def watching(root: Path, batches: Batches, **options) -> FolderWatcher:
    w = FolderWatcher([str(root)], batches, **{**FAST, **options})
    w.start()
    assert w.wait_ready(10)
    return w


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
def test_new_edited_moved_and_deleted_photos_each_give_a_batch(root, poll):
    batches = Batches()
    w = watching(root, batches, poll=poll)
    try:
        assert w.modes == {str(root.resolve()): "polling" if poll else "events"}
        steps = [
            lambda: write_image(root / "new.jpg", 1),
            lambda: write_image(root / "new.jpg", 2, size=80),  # edited
            lambda: (root / "new.jpg").rename(root / "renamed.jpg"),
            lambda: (root / "renamed.jpg").unlink(),
            lambda: write_image(root / "deep" / "er" / "x.PNG", 3),  # upper-case extension
        ]
        for step in steps:
            step()
            assert batches.next().changed == (str(root.resolve()),)
            batches.drain()  # the next step's batch is its own
    finally:
        w.stop()


def test_a_burst_of_changes_is_one_batch_after_the_quiet_time(root):
    batches = Batches()
    w = watching(root, batches, poll=False, debounce_s=1.5)
    try:
        started = time.monotonic()
        for i in range(30):
            write_image(root / f"burst{i:02d}.jpg", i)
        batch = batches.next()
        assert batch.changed == (str(root.resolve()),) and batch.events >= 30
        assert time.monotonic() - started >= 1.5
        assert batches.none_within(2.0)  # not one batch per file
    finally:
        w.stop()


def test_a_steady_stream_of_changes_is_sent_by_the_latest_delay(root):
    batches = Batches()
    w = watching(root, batches, poll=False, debounce_s=0.5, max_delay_s=1.0)
    stop = threading.Event()

    def keep_writing() -> None:  # a change every 0.1 s: never quiet for 0.5 s
        i = 0
        while not stop.is_set():
            write_image(root / f"stream{i % 5}.jpg", i)
            i += 1
            time.sleep(0.1)

    writer = threading.Thread(target=keep_writing)
    started = time.monotonic()
    writer.start()
    try:
        batches.next(timeout=4.0)
        assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        writer.join()
        w.stop()


def test_files_that_are_not_photos_hidden_files_and_ignored_folders_give_no_batch(root, tmp_path):
    ignored = root / "imgsearch-data"
    ignored.mkdir()
    batches = Batches()
    w = FolderWatcher([str(root)], batches, ignore=[str(ignored)], poll=False, **FAST)
    w.start()
    w.wait_ready(10)
    try:
        (root / "notes.txt").write_text("not a photo")
        write_image(root / ".hidden.jpg", 1)
        write_image(root / ".cache" / "thumb.jpg", 2)
        write_image(ignored / "thumbnail.jpg", 3)  # our own writes
        assert batches.none_within(1.0)
        write_image(root / "photo.webp", 4)
        assert batches.next().changed == (str(root.resolve()),)
    finally:
        w.stop()


def test_a_root_that_goes_away_and_comes_back_is_reported_and_watched_again(root, tmp_path):
    batches = Batches()
    w = watching(root, batches, poll=False)
    key = str(root.resolve())
    try:
        root.rename(tmp_path / "unplugged")
        assert batches.next() == ChangeBatch(changed=(), went_offline=(key,))
        assert w.modes == {key: "offline"}
        (tmp_path / "unplugged").rename(root)
        assert batches.next().changed == (key,)  # back: caught up
        assert w.modes == {key: "events"}
        write_image(root / "after.jpg", 5)  # and watched again
        assert batches.next().changed == (key,)
    finally:
        w.stop()


def test_a_root_missing_at_start_is_offline_until_it_appears(tmp_path):
    root = tmp_path / "drive"
    batches = Batches()
    w = watching(root, batches, poll=False)
    try:
        assert w.modes == {str(root.resolve()): "offline"}
        write_image(root / "a.jpg", 1)
        assert batches.next().changed == (str(root.resolve()),)
        assert w.modes == {str(root.resolve()): "events"}
    finally:
        w.stop()


def test_a_drive_mounted_over_its_mount_point_is_watched_again_and_caught_up(root, monkeypatch):
    """Same path, another file system (a drive mounted on its folder): the old watch sees the
    folder underneath, so the watch is made again and the root passed over."""
    from dataclasses import replace

    device = {"id": 1}
    real = watch._presence
    monkeypatch.setattr(watch, "_presence", lambda r: replace(real(r), device=device["id"]))
    batches = Batches()
    w = watching(root, batches, poll=False)
    try:
        first_watch = w._watches[str(root.resolve())]
        device["id"] = 2
        assert batches.next().changed == (str(root.resolve()),)
        assert w._watches[str(root.resolve())] is not first_watch
    finally:
        w.stop()


def test_an_empty_folder_is_offline_until_a_photo_appears_in_it(tmp_path):
    """An unplugged drive's mount point is an empty folder: never passed over (its photos would
    look deleted), and back once something is in it (the app's one rule, scan's)."""
    mount_point = tmp_path / "media" / "usb"
    mount_point.mkdir(parents=True)
    batches = Batches()
    w = watching(mount_point, batches, poll=False, catch_up=True)
    try:
        assert w.modes == {str(mount_point.resolve()): "offline"}
        assert batches.none_within(0.6)
        write_image(mount_point / "DCIM" / "a.jpg", 1)  # the drive is mounted again
        assert batches.next().changed == (str(mount_point.resolve()),)
        assert w.modes == {str(mount_point.resolve()): "events"}
    finally:
        w.stop()


def test_no_file_events_falls_back_to_polling(root, monkeypatch):
    """The inotify watch limit (ENOSPC) or any failure to set up events: that root is polled."""
    from watchdog.observers import Observer

    def no_events(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", no_events)
    batches = Batches()
    w = watching(root, batches)
    try:
        assert w.modes == {str(root.resolve()): "polling"}
        write_image(root / "seen-by-polling.jpg", 9)
        assert batches.next().changed == (str(root.resolve()),)
    finally:
        w.stop()


def test_network_shares_are_polled(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    share = tmp_path / "nas"
    write_image(share / "on-the-nas.jpg", 1)
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\n//nas/photos {share} cifs rw 0 0\n")
    assert watch.filesystem_type(str(share / "2024"), str(mounts)) == "cifs"
    assert watch.filesystem_type("/home", str(mounts)) == "ext4"
    monkeypatch.setattr(watch, "needs_polling", lambda root: root == str(share.resolve()))
    w = FolderWatcher([str(share), str(tmp_path / "local")], Batches(), **FAST)
    write_image(tmp_path / "local" / "here.jpg", 2)
    w.start()
    w.wait_ready(10)
    try:
        assert w.modes[str(share.resolve())] == "polling"
        assert w.modes[str((tmp_path / "local").resolve())] == "events"
    finally:
        w.stop()


def test_roots_can_be_added_and_removed_while_watching(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    batches = Batches()
    w = watching(root, batches, poll=False)
    try:
        w.set_roots([str(other)])
        assert w.wait_ready(10)
        write_image(root / "unwatched.jpg", 1)
        assert batches.none_within(0.8)
        write_image(other / "watched.jpg", 2)
        assert batches.next().changed == (str(other.resolve()),)
        assert set(w.modes) == {str(other.resolve())}
    finally:
        w.stop()


def test_setting_up_the_watches_never_blocks_the_caller(root, tmp_path, monkeypatch):
    """A window starts the watcher: the walk that sets up the watches (inotify watches every
    folder, polling stats every file) runs in the watcher's thread."""
    real = FolderWatcher._add_watch

    def slow(self, *args):
        time.sleep(1.0)  # a big tree, a slow share
        return real(self, *args)

    monkeypatch.setattr(FolderWatcher, "_add_watch", slow)
    w = FolderWatcher([str(root)], Batches(), poll=False, **FAST)
    started = time.monotonic()
    w.start()
    w.set_roots([str(root), str(tmp_path)])
    assert time.monotonic() - started < 0.5
    assert not w.wait_ready(0.1)
    assert w.wait_ready(10) and set(w.modes) == {str(root.resolve()), str(tmp_path.resolve())}
    w.stop()


def test_catch_up_sends_each_root_once_it_is_watched(root, tmp_path):
    """What changed while the window was closed: a pass over each library when it opens."""
    batches = Batches()
    w = FolderWatcher([str(root)], batches, poll=False, catch_up=True, **FAST)
    w.start()
    try:
        assert batches.next().changed == (str(root.resolve()),)
        write_image(tmp_path / "added" / "a.jpg", 3)
        w.set_roots([str(root), str(tmp_path / "added")])
        assert batches.next().changed == (str((tmp_path / "added").resolve()),)
    finally:
        w.stop()


def test_stop_does_not_wait_for_a_slow_set_up(root, monkeypatch):
    """Closing the window while a big share's watch is being set up: stop returns at once and
    the watcher's thread, once the set-up returns, drops the watch and ends."""
    real = FolderWatcher._add_watch

    def slow(self, *args):
        time.sleep(2.0)
        return real(self, *args)

    monkeypatch.setattr(FolderWatcher, "_add_watch", slow)
    w = FolderWatcher([str(root)], Batches(), poll=False, **FAST)
    w.start()
    time.sleep(0.2)  # in the set-up now
    started = time.monotonic()
    w.stop(timeout=0.3)
    assert time.monotonic() - started < 1.0
    w._thread.join(10)
    assert not w._thread.is_alive() and w._observers == {}


def test_a_library_inside_a_hidden_folder_is_watched(tmp_path):
    root = tmp_path / ".local" / "photos"
    write_image(root / "a.jpg", 1)
    batches = Batches()
    w = watching(root, batches, poll=False)
    try:
        write_image(root / "b.jpg", 2)
        assert batches.next().changed == (str(root.resolve()),)
    finally:
        w.stop()


def test_photos_in_a_symlinked_folder_give_a_batch_as_the_walk_finds_them(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "x.jpg", 1)
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    batches = Batches()
    w = watching(root, batches, poll=False)
    try:
        write_image(root / "linked" / "new.jpg", 2)
        assert batches.next().changed == (str(root.resolve()),)
    finally:
        w.stop()


def test_a_root_replaced_by_a_new_folder_is_watched_again(root, tmp_path):
    """The old watch follows the old folder to where it was moved; the new folder gets one."""
    batches = Batches()
    w = watching(root, batches, poll=False)
    key = str(root.resolve())
    try:
        root.rename(tmp_path / "old")
        write_image(root / "new-folder.jpg", 1)  # within the presence interval
        assert key in batches.next().changed
        batches.drain()
        write_image(root / "later.jpg", 2)
        assert batches.next().changed == (key,)
        write_image(tmp_path / "old" / "moved-away.jpg", 3)
        batches.drain()  # nothing more for the root from the folder that is no longer it
        write_image(tmp_path / "old" / "still-not.jpg", 4)
        assert batches.none_within(0.8)
    finally:
        w.stop()


def test_a_failing_batch_handler_does_not_end_the_watching(root):
    seen: list[ChangeBatch] = []

    def handler(batch: ChangeBatch) -> None:
        seen.append(batch)
        if len(seen) == 1:
            raise RuntimeError("a bug in the consumer")

    w = FolderWatcher([str(root)], handler, poll=False, **FAST)
    w.start()
    w.wait_ready(10)
    try:
        write_image(root / "one.jpg", 1)
        deadline = time.monotonic() + 8
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        write_image(root / "two.jpg", 2)
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(seen) == 2
    finally:
        w.stop()


def test_stop_is_quick_with_events_and_with_polling(root):
    for poll in (False, True):
        w = watching(root, Batches(), poll=poll, poll_interval_s=5.0)
        started = time.monotonic()
        w.stop()
        assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------------- the watch loop
def run_loop(library, roots, cancel, **options):
    """``watch_libraries`` in a thread; its events in a queue."""
    events: queue.Queue = queue.Queue()

    def loop() -> None:
        try:
            for event in watch.watch_libraries(library, roots, cancel=cancel, **{**FAST, **options}):
                events.put(event)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            events.put(exc)
        events.put(None)

    thread = threading.Thread(target=loop)
    thread.start()
    return thread, events


def next_of(events: queue.Queue, kind, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(event, BaseException):
            raise event
        if event is None:
            raise AssertionError(f"the loop ended before a {kind.__name__}")
        if isinstance(event, kind):
            return event


def test_the_loop_catches_up_then_follows_changes_until_cancelled(tmp_path, embedder, root):
    write_image(root / "second.jpg", 1)
    library = ImageLibrary(tmp_path / "data", embedder)
    cancel = CancelToken()
    thread, events = run_loop(library, [str(root)], cancel, poll=False)
    try:
        caught_up = next_of(events, IndexReport)
        assert caught_up.embedded == 2 and caught_up.indexed == 2
        assert next_of(events, Watching).modes == ((str(root.resolve()), "events"),)
        write_image(root / "third.jpg", 2)
        (root / "first.jpg").unlink()
        report = next_of(events, IndexReport)
        while report.indexed != 2 or report.removed + report.embedded == 0:
            report = next_of(events, IndexReport)  # the two changes may come as two passes
        paths = {h.path for h in library.search(str(root / "third.jpg"), k=5)}
        assert paths == {str((root / "second.jpg").resolve()), str((root / "third.jpg").resolve())}
    finally:
        started = time.monotonic()
        cancel.cancel()
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - started < 3.0
        library.close()


def test_a_full_disk_is_reported_and_the_next_change_tries_again(tmp_path, embedder, root,
                                                                 monkeypatch):
    """The save fails (ENOSPC, injected where the index writes): the watch goes on, and the
    next change, with room again, indexes everything."""
    from imgsearch_gui.index import durable

    real = durable.save_npy
    full = threading.Event()
    full.set()

    def maybe_full(directory, path, arr):
        if full.is_set():
            raise durable.write_error(directory, path.name, OSError(errno.ENOSPC, "No space left"))
        return real(directory, path, arr)

    monkeypatch.setattr(durable, "save_npy", maybe_full)
    library = ImageLibrary(tmp_path / "data", embedder)
    cancel = CancelToken()
    thread, events = run_loop(library, [str(root)], cancel, poll=False)
    try:
        failed = next_of(events, PassFailed)
        assert failed.root == str(root.resolve()) and isinstance(failed.error, StorageWriteError)
        full.clear()
        write_image(root / "later.jpg", 3)
        assert next_of(events, IndexReport).indexed == 2  # both photos: nothing was lost
    finally:
        cancel.cancel()
        thread.join(10)
        library.close()


def test_an_unplugged_library_keeps_its_photos_and_catches_up_when_back(tmp_path, embedder, root):
    library = ImageLibrary(tmp_path / "data", embedder)
    cancel = CancelToken()
    thread, events = run_loop(library, [str(root)], cancel, poll=False)
    try:
        assert next_of(events, IndexReport).indexed == 1
        next_of(events, Watching)
        root.rename(tmp_path / "away")
        offline = next_of(events, Watching)
        assert offline.modes == ((str(root.resolve()), "offline"),)
        write_image(tmp_path / "away" / "added-elsewhere.jpg", 4)
        (tmp_path / "away").rename(root)
        back = next_of(events, IndexReport)
        assert back.embedded == 1 and back.indexed == 2
    finally:
        cancel.cancel()
        thread.join(10)
        library.close()
