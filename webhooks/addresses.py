"""Where a webhook may be sent: http(s) URLs whose every address is on the public internet.

A user's URL is requested by our server, so it must not reach what only the server can reach
(its loopback, the private network, a cloud's link-local metadata service). The URL is checked
at registration and again at each send, on the addresses the host resolves to then: the send
connects to one of the addresses checked (never resolving again), so a name that changes its
answer between the check and the connection (DNS rebinding) cannot slip through. Staff may
allow an endpoint private addresses (a receiver on the same network).
"""

import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}
# Seconds a host name may take to resolve (registration, each send) before the URL is refused.
RESOLVE_TIMEOUT = 5.0
# Lookups under way at once in this process: one that never answers keeps its thread (a lookup
# cannot be interrupted), so their number is bounded; past it, a URL waits its timeout for a turn.
_lookups = threading.BoundedSemaphore(8)


class AddressRefused(ValueError):
    """A webhook URL we will not send to; the message says why, for the user."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (addresses, port) and what to ask for (host, path)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def refusal(address: str) -> str:
    """What makes an IP address one a webhook may not reach ("a loopback address"; "" when it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("a loopback", ip.is_loopback),
        ("an unspecified", ip.is_unspecified),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
    ):
        if flag:
            return f"{kind} address"
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges and the like
        return "not a public address"
    return ""


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a URL a webhook may use, or AddressRefused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise AddressRefused("only http:// and https:// URLs can receive webhooks")
    if not parts.hostname:
        raise AddressRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("put no user name or password in the URL (the signature authenticates us)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path


def _lookup(host: str, port: int, timeout: float) -> list:
    """getaddrinfo, given up after ``timeout`` seconds.

    getaddrinfo has no timeout of its own: a resolver that never answers held a web request (one
    of the few a web process serves at once) or a webhook task for as long as it pleased. It runs
    in a daemon thread instead, left to finish on its own if it is late.
    """
    if not _lookups.acquire(timeout=timeout):
        raise AddressRefused(f"{host} did not resolve within {timeout:g} s (too many lookups waiting)")
    outcome: dict = {}
    done = threading.Event()

    def look_up() -> None:
        try:
            outcome["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome["error"] = exc
        finally:
            _lookups.release()
            done.set()

    threading.Thread(target=look_up, name=f"resolve {host}"[:60], daemon=True).start()
    if not done.wait(timeout):
        raise AddressRefused(f"{host} did not resolve within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["found"]


def resolve(url: str, *, allow_private: bool = False, timeout: float = RESOLVE_TIMEOUT) -> Target:
    """The URL's target with every address its host has now, each checked; else AddressRefused
    (also when the host takes more than ``timeout`` seconds to resolve)."""
    scheme, host, port, path = parse(url)
    try:
        found = _lookup(host, port, timeout)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{host} cannot be resolved: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            if reason := refusal(address):
                where = f"{host} is" if address == host else f"{host} resolves to {address},"
                raise AddressRefused(f"{where} {reason}: webhooks go to public addresses only")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)
