"""How many requests of one worker may hold a database connection at once.

Sync handlers run in a thread pool and hold a connection across several thread hops. If more
requests than the connection pool holds were working on the database, threads could all be
blocked waiting for a connection while the requests holding connections wait for a thread.
A slot per connection, taken in the event loop before a session is opened, makes that
impossible: a request waiting for a slot costs no thread and no connection.

The slot is taken only once the request's body has been read (FastAPI reads it before it
solves any dependency, and the session is a dependency), so a client that sends its body
slowly holds a socket, never a slot: it cannot starve other requests of the database.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.metrics import waiting_for_connection


class ConnectionSlots:
    """An asyncio semaphore of `limit` slots for the running event loop.

    A worker runs one loop for its life; the tests start a loop per client, so a semaphore
    is made afresh for a new loop instead of one bound to a loop that has gone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(limit)

    def _current(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        semaphore = self._current()
        if semaphore.locked():
            # Counted while it waits: requests queueing for the database (GET /metrics).
            with waiting_for_connection():
                await semaphore.acquire()
        else:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()
