"""Exceptions that a place in radius_hook does not expect: programming errors (a TypeError,
a KeyError...), not the store or directory trouble it is written for.

Such a place still goes on (nothing may raise into radiusd, and the recorder must outlive
any one batch), but a fallback must not hide a bug: each surprise is counted per place, and
logged at most once a minute per place, so a bug hit on every request is seen without
flooding the log.
"""

from __future__ import annotations

import os
import time
import traceback

LOG_EVERY = 60.0  # seconds between two log lines of one place
TEXT_MAX = 300  # characters of an exception's text in a log line


class Surprises:
    """Counts of unexpected exceptions per place (`counts`), each place logged at most once
    every LOG_EVERY seconds through `log(text)`."""

    def __init__(self, log=None, clock=time.monotonic) -> None:
        self._log = log or (lambda text: None)
        self._clock = clock
        self.counts: dict = {}  # place -> exceptions seen there
        self._logged_at: dict = {}  # place -> clock() of its last log line

    def note(self, place: str, exc: BaseException, detail: str = "") -> None:
        """One unexpected exception at `place`: counted, and logged (with `detail`: what it
        cost) unless that place logged less than LOG_EVERY seconds ago."""
        count = self.counts[place] = self.counts.get(place, 0) + 1
        now = self._clock()
        last = self._logged_at.get(place)
        if last is not None and now - last < LOG_EVERY:
            return
        self._logged_at[place] = now
        self._log(
            f"{place}: unexpected {type(exc).__name__}: {str(exc)[:TEXT_MAX]}"
            f"{_where(exc)}{'; ' + detail if detail else ''}; {count} so far (a bug)"
        )


def _where(exc: BaseException) -> str:
    """' at FILE:LINE in FUNCTION' of the innermost frame that raised `exc`, or ''."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"


__all__ = ["LOG_EVERY", "Surprises"]
