"""Building blocks for pytest fixtures that several test areas share."""

from __future__ import annotations


def made_then_removed(create, remove):
    """Generator body of a factory fixture: yields `make`, which calls `create` and keeps
    what it made; at teardown `remove` is called on each, newest first.

        @pytest.fixture
        def make_guard():
            yield from made_then_removed(GuardConfig, GuardConfig.remove)
    """
    made = []

    def make(*args, **kwargs):
        thing = create(*args, **kwargs)
        made.append(thing)
        return thing

    yield make
    for thing in reversed(made):
        remove(thing)
