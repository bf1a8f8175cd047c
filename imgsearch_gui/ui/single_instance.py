"""One window per data dir: a second start hands its photos to the running window and exits.

A file manager's "Open with" starts ``imgsearch-gui PHOTO`` once per photo. The first process of a
data dir listens on a local socket (a Unix socket or a named pipe) named after that data dir; a
later one connects, sends a :class:`HandOver` as one JSON line, waits for the ack and exits,
without building a window or loading the model. The data dir's writer lock stays the backstop
should two windows ever run (local sockets unavailable, a hung first window).

Who is first is decided by a lock file beside the socket (``QLockFile``, stale when its process
died), not by ``listen()``: on Windows two servers may listen on one pipe name, and on Unix a
``listen()`` with ``UserAccessOption`` (the socket readable by this user only) moves its socket
file over any other, a live window's too.
"""

from __future__ import annotations

import enum
import getpass
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, QLockFile, QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

PROTOCOL = 1
#: Far more than a few thousand photo paths; a bigger message is not ours.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: A connection that sends no complete message within this time is dropped.
READ_TIMEOUT_MS = 10_000
_ACK = b'{"ok": true}\n'


@dataclass(frozen=True)
class HandOver:
    """What a second start asks of the running window."""

    photos: tuple[str, ...] = field(default_factory=tuple)  # absolute paths
    demo: bool = False
    raise_window: bool = True

    def to_bytes(self) -> bytes:
        message = {"protocol": PROTOCOL, "photos": list(self.photos), "demo": self.demo,
                   "raise": self.raise_window}
        return json.dumps(message).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> HandOver:
        """The message of one JSON line; ValueError for anything else."""
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a JSON message: {exc}") from None
        if not isinstance(message, dict) or message.get("protocol") != PROTOCOL:
            raise ValueError("not a hand-over message of this version")
        photos = message.get("photos", [])
        if not isinstance(photos, list) or not all(isinstance(p, str) for p in photos):
            raise ValueError("photos must be a list of paths")
        demo, raise_window = message.get("demo", False), message.get("raise", True)
        if not isinstance(demo, bool) or not isinstance(raise_window, bool):
            raise ValueError("demo and raise must be true or false")
        return cls(photos=tuple(photos), demo=demo, raise_window=raise_window)


class Start(enum.Enum):
    """How :meth:`InstanceServer.start` went."""

    LISTENING = "listening"  # this process is the data dir's window
    TAKEN = "taken"  # another process is (or is becoming) the data dir's window
    UNAVAILABLE = "unavailable"  # no local sockets here: go on alone


def server_name(data_dir: str | os.PathLike[str]) -> str:
    """The local socket's name for this user and data dir: short (a Unix socket path is limited
    to about 100 bytes) and the same for every spelling of the folder."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without a passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else ""
    key = f"{user}\0{Path(data_dir).expanduser().resolve()}"
    return "imgsearch-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def try_hand_over(data_dir: str | os.PathLike[str], request: HandOver, *,
                  timeout_ms: int = 10_000, wait_for_server_ms: int = 0) -> bool:
    """Send ``request`` to the data dir's running window; True when it took it (acked).

    ``wait_for_server_ms``: keep trying to connect that long (the other process won the start
    but may not listen yet). Blocking: called before the event loop runs.
    """
    name = server_name(data_dir)
    deadline = time.monotonic() + wait_for_server_ms / 1000
    socket = QLocalSocket()
    try:
        while True:
            socket.connectToServer(name)
            if socket.waitForConnected(min(timeout_ms, 2_000)):
                break
            socket.abort()
            if time.monotonic() >= deadline:
                log.debug("no running window for this data dir (%s)", socket.errorString())
                return False
            time.sleep(0.1)
        socket.write(QByteArray(request.to_bytes()))
        if not socket.waitForBytesWritten(timeout_ms):
            log.warning("could not hand over to the running window: %s", socket.errorString())
            return False
        reply = b""
        end = time.monotonic() + timeout_ms / 1000
        while not reply.endswith(b"\n") and time.monotonic() < end:
            if socket.bytesAvailable() or socket.waitForReadyRead(200):
                reply += bytes(socket.readAll().data())
            elif socket.state() != QLocalSocket.LocalSocketState.ConnectedState:
                break
        if reply.strip() != _ACK.strip():
            log.warning("the running window did not take the hand-over (reply %r)", reply[:80])
            return False
        return True
    finally:
        socket.abort()


class InstanceServer(QObject):
    """The running window's end: takes hand-overs and emits them as :class:`HandOver`."""

    received = Signal(object)  # HandOver

    def __init__(self, data_dir: str | os.PathLike[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(data_dir)
        self._lock = QLockFile(os.path.join(QDir.tempPath(), self.name + ".lock"))
        self._lock.setStaleLockTime(0)  # held for the app's lifetime: stale only when its process died
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)

    def start(self) -> Start:
        """Become the data dir's window, or say who is."""
        if not self._lock.tryLock(0):
            if self._lock.error() == QLockFile.LockError.LockFailedError:
                return Start.TAKEN
            log.warning("single window per data dir is off: cannot create %s (%s)",
                        self._lock.fileName(), self._lock.error().name)
            return Start.UNAVAILABLE
        if self._server.listen(self.name):
            return Start.LISTENING
        if self._server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            # we hold the lock: the socket file is a crashed window's (Qt replaces it itself
            # when it sets the file's permissions; this is for when it does not)
            log.info("removing the stale socket %s of a window that crashed", self.name)
            QLocalServer.removeServer(self.name)
            if self._server.listen(self.name):
                return Start.LISTENING
        log.warning("single window per data dir is off: cannot listen on %s (%s)",
                    self.name, self._server.errorString())
        self._lock.unlock()
        return Start.UNAVAILABLE

    def is_listening(self) -> bool:
        return self._server.isListening()

    def close(self) -> None:
        self._server.close()
        if self._lock.isLocked():
            self._lock.unlock()

    # ==== connections ========================================================================
    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            if socket is not None:
                _Connection(socket, self._take, self)

    def _take(self, request: HandOver) -> None:
        log.info("handed over from a second start: %d path(s)%s", len(request.photos),
                 ", demo" if request.demo else "")
        self.received.emit(request)


class _Connection(QObject):
    """One client: read one line, hand it on, ack, close; whatever goes wrong is only logged."""

    def __init__(self, socket: QLocalSocket, take, parent: QObject) -> None:
        super().__init__(parent)
        self._socket, self._take, self._buffer, self._done = socket, take, b"", False
        socket.setParent(self)
        socket.readyRead.connect(self._read)
        socket.disconnected.connect(self._disconnected)
        self._timer = QTimer(self, singleShot=True, interval=READ_TIMEOUT_MS)
        self._timer.timeout.connect(lambda: self._drop("no complete message in time"))
        self._timer.start()
        self._read()  # what came with the connection

    def _read(self) -> None:
        if self._done:
            return
        self._buffer += bytes(self._socket.readAll().data())
        if len(self._buffer) > MAX_MESSAGE_BYTES:
            self._drop(f"a message over {MAX_MESSAGE_BYTES} bytes")
            return
        line, newline, _rest = self._buffer.partition(b"\n")
        if not newline:
            return
        self._done = True
        self._timer.stop()
        try:
            request = HandOver.from_bytes(line)
        except ValueError as exc:
            self._drop(str(exc))
            return
        self._socket.write(QByteArray(_ACK))
        self._socket.flush()
        self._take(request)
        self._socket.disconnectFromServer()  # after the ack is written

    def _drop(self, why: str) -> None:
        log.warning("ignored a hand-over: %s", why)
        self._done = True
        self._timer.stop()
        self._socket.abort()
        self.deleteLater()

    def _disconnected(self) -> None:
        if not self._done and self._buffer:
            log.warning("ignored a hand-over: the connection closed mid-message (%d bytes)",
                        len(self._buffer))
        self._done = True
        self._timer.stop()
        self.deleteLater()
