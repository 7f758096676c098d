"""The per-worker cache of ballot options is shared by the worker's threads."""

import threading
from collections import OrderedDict
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.core.db import open_session
from app.services import processes
from tests.factories import make_user, make_voting_process


class _PausingCache(OrderedDict[Any, Any]):
    """Pauses the first thread that finds `key` right after its look-up, giving another
    thread the chance to evict it before the finder moves it to the end."""

    def __init__(self, key: Any) -> None:
        super().__init__()
        self.key = key
        self.found = threading.Event()
        self.evicted = threading.Event()

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        if key == self.key and value is not None and not self.found.is_set():
            self.found.set()
            # With the lock held here (as it must be), the evicting thread cannot run: the
            # wait ends by its deadline. Without it, the other thread evicts meanwhile.
            self.evicted.wait(timeout=1)
        return value


def test_an_entry_evicted_by_another_thread_never_fails_a_look_up(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = make_user(session)
    first, first_proposals = make_voting_process(session, author, costs=(1_000, 2_000))
    second, _ = make_voting_process(session, author, costs=(3_000,))
    assert first.id is not None
    assert first.voting_started_at is not None
    cache = _PausingCache((first.id, first.voting_started_at))
    monkeypatch.setattr(processes, "_options_in_voting", cache)
    monkeypatch.setattr(processes, "_OPTIONS_CACHE_SIZE", 1)
    with open_session(engine, write=False) as db:
        processes.ballot_options(db, first)  # cached now
    failures: list[BaseException] = []
    results: dict[str, dict[int, int]] = {}

    def look_up(name: str, process: Any) -> None:
        try:
            with open_session(engine, write=False) as db:
                results[name] = processes.ballot_options(db, process)
        except BaseException as error:
            failures.append(error)

    finder = threading.Thread(target=look_up, args=("first", first))
    finder.start()
    assert cache.found.wait(timeout=10)
    evictor = threading.Thread(target=look_up, args=("second", second))
    evictor.start()
    evictor.join(timeout=0.5)
    if not evictor.is_alive():
        cache.evicted.set()  # it got through while the finder paused: the finder resumes
    finder.join(timeout=10)
    evictor.join(timeout=10)
    assert failures == []
    assert results["first"] == {p.id: p.cost for p in first_proposals}
    assert set(results["second"].values()) == {3_000}
