"""Fixtures for webhooks. A plugin: ``pytest_plugins = ["tests.fixtures_webhooks"]``.

- ``receiver``: a real webhook receiver (http.server on a free port of 127.0.0.1, in a thread).
- ``fast_retries``: retries in milliseconds; ``sends_now``: webhook tasks run in the test process when enqueued.
- ``public_dns``: PUBLIC_HOOK_URL's host resolves to a public address (no DNS needed).
"""

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from unittest import mock

import pytest


class Receiver:
    """Records each POST (its headers and body) and answers with the next queued status (else 200)."""

    def __init__(self) -> None:
        self.received: list[SimpleNamespace] = []
        self.statuses: deque[int] = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    receiver.received.append(
                        SimpleNamespace(path=self.path, headers=dict(self.headers.items()), body=body)
                    )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(request.body) for request in self.received]


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def fast_retries(settings):
    """Retries in milliseconds, short timeouts."""
    settings.COSMOS_WEBHOOK_RETRY_BASE_DELAY = 0.01
    settings.COSMOS_WEBHOOK_RETRY_MAX_DELAY = 0.05
    settings.COSMOS_WEBHOOK_TIMEOUT = 5.0


@pytest.fixture
def sends_now(fast_retries):
    """The webhook tasks run in this process when they are enqueued (no broker, no worker)."""
    from webhooks import tasks

    with mock.patch.object(tasks.send_webhook, "delay", side_effect=tasks.send_webhook) as delay:
        yield delay


PUBLIC_HOOK_URL = "https://hooks.example.com/in"


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.com (PUBLIC_HOOK_URL) resolves to a public address; every other name as it really does."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
