"""MessageChannel.report: the error's type decides how it is shown."""

from __future__ import annotations

from imgsearch_gui.base.errors import ImageError, QueryError
from imgsearch_gui.ui.messages import Level, MessageChannel


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - the traceback is what we want
        return caught


def test_a_user_error_is_one_line_without_a_traceback(qapp):
    channel = MessageChannel()
    message = channel.report("Search failed", _raised(QueryError("the query images cancel")))
    assert message.level is Level.ERROR
    assert message.text == "Search failed: the query images cancel" and message.details == ""


def test_a_bad_photo_is_a_warning_and_a_bug_keeps_its_traceback(qapp):
    channel = MessageChannel()
    photo = channel.report("Search failed", _raised(ImageError("/x/a.jpg", "truncated")))
    assert photo.level is Level.WARNING and photo.text == "Search failed: a.jpg: truncated"
    bug = channel.report("Search failed", _raised(RuntimeError("internal")))
    assert bug.level is Level.ERROR and "Traceback" in bug.details
