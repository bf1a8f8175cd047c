"""Work-arounds for bugs of particular Qt binding versions.

PySide6 6.12.0 (6.11.2 is fine) returns ``None`` from every void method and ``True`` from
``SignalInstance.emit`` without taking a reference, so each call made from Python drops one
reference to ``None`` (``label.setText``, ``widget.update``, ``processEvents``...) or ``True``.
After some tens of thousands of calls (minutes of indexing) CPython < 3.12 aborts with
"Fatal Python error: none_dealloc" (or bool_dealloc).

On import this module measures both leaks. If there is one, on CPython < 3.12 it makes ``None``,
``True`` and ``False`` effectively immortal (their reference counts are raised by 2**40, which no
run can use up; CPython 3.12+ makes them immortal itself), and :func:`emit` gives back the
reference each emit takes. On fixed versions both measure 0 and nothing is changed.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    ping = Signal()


def _measure_emit_leak(samples: int = 16) -> int:
    """References to ``True`` lost per ``emit`` (0 when the binding is fine)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(samples):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):
        _incref(True)  # give back what the probe took
    if lost <= 0 or lost % samples:
        return 0  # no leak (or noise: do not guess)
    return lost // samples


def _measure_void_leak(samples: int = 16) -> int:
    """References to ``None`` lost per void call."""
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(samples):
        probe.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    for _ in range(max(0, lost)):
        _incref(None)
    return max(0, lost) // samples


def _pin_singletons() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal there already
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    return True


EMIT_LEAK = _measure_emit_leak()
VOID_LEAK = _measure_void_leak()
PINNED = bool(EMIT_LEAK or VOID_LEAK) and _pin_singletons()
if EMIT_LEAK or VOID_LEAK:
    log.warning(
        "this Qt binding leaks references (None: %d per void call, True: %d per emit); "
        "worked around. Use PySide6 != 6.12.0.", VOID_LEAK, EMIT_LEAK,
    )


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, compensating the PySide6 6.12.0 reference leak."""
    signal.emit(*args)
    for _ in range(EMIT_LEAK):
        _incref(True)
