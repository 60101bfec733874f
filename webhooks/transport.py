"""One POST to a checked webhook target: connects to an address resolve() checked, follows no redirect.

http.client sends the request; the connection classes below only pin the socket to the checked
address, while the Host header and the TLS certificate check (SNI, hostname) use the URL's host.
"""

import http.client
import socket
import ssl
from dataclasses import dataclass

from webhooks.addresses import Target

EXCERPT_BYTES = 2000


class SendError(OSError):
    """The request could not be made or got no answer (refused, timed out, TLS failure)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str  # the first EXCERPT_BYTES of the answer, decoded leniently


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to the target's first address that accepts a connection; its answer, or SendError."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    for address in target.addresses:
        connection = connection_class(target.host, target.port, address=address, timeout=timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:  # this address is down: the next one may answer
                last_error = exc
                continue
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={"Host": target.host_header, "Content-Type": "application/json", **headers},
            )
            response = connection.getresponse()
            excerpt = response.read(EXCERPT_BYTES)
            return Answer(status=response.status, body=excerpt.decode("utf-8", errors="replace"))
        except (OSError, http.client.HTTPException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
    raise SendError(f"could not connect to {target.host}: {last_error}")
