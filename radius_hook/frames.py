"""The frames radiusd (radius_hook.handoff) and its recorder (radius_hook.recorder) send each
other on their pipes: a 4-byte little-endian length, then a marshal payload. Both sides
import this module, so that radiusd never imports the recorder.
"""

from __future__ import annotations

import marshal
import struct

HEADER = struct.Struct("<I")


def frame(payload) -> bytes:
    """One frame of `payload` (values marshal can carry)."""
    data = marshal.dumps(payload)
    return HEADER.pack(len(data)) + data


class FrameReader:
    """Frames out of a byte stream that arrives in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list:
        """The payloads of the frames completed by `data`, in order."""
        self._buffer += data
        frames = []
        start = 0
        size_of, loads, header = HEADER.unpack_from, marshal.loads, HEADER.size
        with memoryview(self._buffer) as view:  # frames are read in place, not copied out
            total = len(view)
            while total - start >= header:
                end = start + header + size_of(view, start)[0]
                if end > total:
                    break
                frames.append(loads(view[start + header : end]))
                start = end
        del self._buffer[:start]
        return frames


__all__ = ["FrameReader", "frame"]
