"""The frame format between radiusd and its recorder (radius_hook.frames): frames survive any
split of the byte stream, and radiusd's modules never import the recorder for it."""

from __future__ import annotations

from policy.types import SUCCESS
from radius_hook.frames import FrameReader, frame
from tests.unit.test_import_graph import import_graph

KEY = ("10.0.0.1", None, None, "192.0.2.1", None, None, "Virtual")
# What rlm_python3 loads into radiusd: the module and everything it imports.
RADIUSD_ENTRY = "radius_hook.module"


def test_frames_survive_any_split():
    data = b"".join(frame((i, SUCCESS, f"user{i}", 1.5 * i, KEY, ())) for i in range(50))
    reader = FrameReader()
    got = []
    for i in range(0, len(data), 7):
        got.extend(reader.feed(data[i : i + 7]))
    assert got == [(i, SUCCESS, f"user{i}", 1.5 * i, KEY, ()) for i in range(50)]


def test_radiusd_never_imports_the_recorder():
    graph = import_graph()
    seen, todo = set(), [RADIUSD_ENTRY]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    assert "radius_hook.frames" in seen
    assert "radius_hook.recorder" not in seen
