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
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}


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


def resolve(url: str, *, allow_private: bool = False) -> Target:
    """The URL's target with every address its host has now, each checked; else AddressRefused."""
    scheme, host, port, path = parse(url)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
