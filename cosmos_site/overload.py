"""What a web process does when more arrives than it can take: queue, then 503 with Retry-After.

Daphne runs each request's (synchronous) Django code in a thread of its own: asgiref gives every
request a single-thread executor, so ASGI_THREADS bounds nothing and a burst of 400 requests
made 400 threads. Each took a database connection (PostgreSQL ran out of them), and on SQLite
they all competed for the GIL while one of them held the write lock, so that lock was held
ever longer and writers waiting behind it ran out their busy timeout ("database is locked").

- ``RequestAdmission`` (ASGI, in asgi.py) lets COSMOS_WEB_CONCURRENCY requests in at once; the
  others wait their turn in order, costing nothing but a coroutine, for at most
  COSMOS_WEB_QUEUE_TIMEOUT seconds, then get a 503.
- ``DatabaseBusyMiddleware`` (Django) turns a database that could not be had in time into a
  503: no free connection in the PostgreSQL pool within COSMOS_DB_POOL_TIMEOUT, no slot left on
  the server ("too many clients already"), or, as a last resort, SQLite's busy timeout. Nothing
  was written (the request's transaction rolled back).

Either way the client is told to come back (JSON under /api/, a short page elsewhere), and the
log gets one line per burst rather than a traceback per request.
"""

import asyncio
import json
import logging
import sqlite3
import threading
import time

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from psycopg_pool import PoolTimeout, TooManyRequests

logger = logging.getLogger("cosmos_site.overload")

RETRY_AFTER_SECONDS = 5
# At most one log line per this many seconds for each kind of overload, counting the 503s between.
LOG_INTERVAL_SECONDS = 10.0

# What PostgreSQL says when it has no connection slot left for a new client.
POSTGRES_FULL = ("too many clients already", "remaining connection slots are reserved")

BUSY_MESSAGE = f"the server is busy: try again in {RETRY_AFTER_SECONDS} seconds"
BUSY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Busy</title></head>
<body><h1>The server is busy</h1><p>Too many requests at once. Try again in a few seconds.</p></body></html>
"""


class _Throttle:
    """One log line per interval, with the number of 503s since the last line."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = threading.Lock()
        self.last_logged = float("-inf")
        self.unlogged = 0

    def note(self, reason: str, path: str) -> None:
        with self.lock:
            self.unlogged += 1
            now = time.monotonic()
            if now - self.last_logged < self.interval:
                return
            count, self.unlogged, self.last_logged = self.unlogged, 0, now
        others = ""
        if count > 1:
            others = f" and to {count - 1} other request{'s' if count > 2 else ''} since the last report"
        logger.warning("busy (%s): answered 503 to %s%s", reason, path, others)


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _busy_body(path: str) -> tuple[bytes, str]:
    if _is_api(path):
        body = json.dumps({"error": BUSY_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}).encode()
        return body, "application/json"
    return BUSY_PAGE.encode(), "text/html; charset=utf-8"


# --- Admission: a bounded number of requests at once ------------------------------------------------

QUEUE_FULL = "no request slot came free in time"


class RequestAdmission:
    """ASGI middleware: at most ``limit`` HTTP requests are worked on at once, the rest wait in order.

    WebSockets pass straight through: they are long-lived, and their handlers use the database
    only briefly. (A response body goes into daphne's buffer as fast as Django makes it, so a
    slow download does not keep its slot or its database connection.)
    """

    def __init__(self, app, *, limit: int, queue_timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.queue_timeout = queue_timeout
        self._slots: asyncio.Semaphore | None = None
        self._throttle = _Throttle(LOG_INTERVAL_SECONDS)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made in the server's event loop
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        try:
            await asyncio.wait_for(slots.acquire(), self.queue_timeout)
        except TimeoutError:
            self._throttle.note(QUEUE_FULL, scope.get("path", ""))
            await self._busy(scope, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()

    @staticmethod
    async def _busy(scope, send) -> None:
        body, content_type = _busy_body(scope.get("path", ""))
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# --- The database could not be had in time -----------------------------------------------------------


def database_busy_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the database was too busy to answer in time, or None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:  # Django keeps the driver's error as the cause
        seen.add(id(error))
        if isinstance(error, TooManyRequests):
            return "too many requests wait for a database connection"
        if isinstance(error, PoolTimeout):
            return "no database connection came free in time"
        if any(text in str(error) for text in POSTGRES_FULL):
            return "PostgreSQL has no connection slot left"
        if isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error):
            return "the SQLite database stayed locked by another writer"
        error = error.__cause__ or error.__context__
    return None


_database_throttle = _Throttle(LOG_INTERVAL_SECONDS)


def database_busy_response(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """The 503 for a request that failed because the database was busy, or None for other errors.

    Exception handlers that catch errors before Django does (an API framework's) can call this too.
    """
    reason = database_busy_reason(exc)
    if reason is None:
        return None
    _database_throttle.note(reason, request.path)
    if _is_api(request.path):
        response = JsonResponse({"error": BUSY_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}, status=503)
    else:
        response = HttpResponse(BUSY_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # logged above, once per burst; Django would log each one
    return response


class DatabaseBusyMiddleware(MiddlewareMixin):
    """A view's (or its template's) "database busy" error becomes a 503."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return database_busy_response(request, exception)
