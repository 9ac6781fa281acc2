"""Errors that guide commands report as one line (``error: ...``) instead of a traceback."""
from __future__ import annotations


class GuideError(Exception):
    """A user-facing failure: bad input, missing file, unusable checkpoint, ...

    The CLI prints ``error: <message>`` on one line to stderr and exits with ``exit_code``.
    """

    exit_code: int = 2

    def one_line(self) -> str:
        """The message collapsed onto a single line."""
        text = " ".join(str(self).split())
        return text or type(self).__name__
