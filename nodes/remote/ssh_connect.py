"""The `ssh` transport's connection: host keys, authentication, retries and remote commands.

One authenticated connection per node is opened lazily and reused by every operation, and
reopened after a drop. Host keys are pinned: only the key recorded with the node is accepted.
Operations that fail on the network are retried with exponential backoff and jitter.
"""

import base64
import hashlib
import logging
import random
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from django.conf import settings

from nodes.remote.base import (
    CancelCheck,
    CommandResult,
    ConnectError,
    TransferCancelled,
    TransferError,
    Transport,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK = 1 << 20

# AES-GCM encrypts and authenticates in one pass (hardware-assisted); paramiko's default order
# puts CTR mode with a separate HMAC first.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
# Network trouble worth retrying. Authentication, host keys and file errors (a missing file, no
# permission) are not: retrying cannot change them.
TRANSIENT = (OSError, EOFError, paramiko.SSHException)
PERMANENT = (
    paramiko.AuthenticationException,
    paramiko.BadHostKeyException,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (_Unreachable, _Stalled, *TRANSIENT)) and not isinstance(exc, PERMANENT)


class HostKeyError(ConnectError):
    """The server's host key is not the one recorded for the node."""


class AuthenticationError(ConnectError):
    """The server refused our credentials."""


class _Stalled(Exception):
    """Nothing, not even a heartbeat, arrived on a channel for too long: the link is dead."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def parse_host_key(text: str) -> paramiko.PKey:
    """A key from "ssh-ed25519 AAAA…" (a known_hosts entry without the host name)."""
    try:
        key_type, data = text.split()[:2]
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data))
    except (ValueError, TypeError, paramiko.SSHException) as exc:
        raise HostKeyError(f"the recorded host key {text[:40]!r}… is not a valid public key") from exc


def parse_jump(text: str) -> tuple[str, str, int]:
    """`user@host[:port]` → (user, host, port)."""
    user, _, address = text.rpartition("@")
    host, _, port = address.partition(":")
    if not user or not host or (port and not port.isdigit()):
        raise ConnectError(f"jump host {text!r} is not of the form user@host[:port]")
    return user, host, int(port or 22)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: retries spread out instead of hammering in step."""

    attempts: int
    base: float
    cap: float = 30.0

    def delays(self) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            yield random.uniform(0, min(self.cap, self.base * 2**attempt))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text else text


def _transport_factory(sock, **kwargs) -> paramiko.Transport:
    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    preferred = [name for name in PREFERRED_CIPHERS if name in options.ciphers]
    options.ciphers = (*preferred, *(name for name in options.ciphers if name not in preferred))
    return transport


def _open_socket(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    # Without this each channel request waits on Nagle/delayed-ACK: ~40 ms per operation.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def fetch_host_key(host: str, port: int, *, timeout: float = 10.0, sock=None) -> paramiko.PKey:
    """The key a server presents, without authenticating (for `cosmos_node add`)."""
    try:
        transport = paramiko.Transport(sock or _open_socket(host, port, timeout))
        try:
            transport.start_client(timeout=timeout)
            return transport.get_remote_server_key()
        finally:
            transport.close()
    except TRANSIENT as exc:
        raise ConnectError(f"cannot reach {host}:{port}: {_describe(exc)}") from exc


class _PinnedKeyPolicy(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key) -> None:
        raise HostKeyError(
            f"{hostname} presented a {key.get_name()} host key, {fingerprint(key)}, but the node trusts "
            "a key of another type"
        )


class SSHConnection(Transport):
    """The connection and commands every part of the ssh transport works through."""

    def __init__(self, node) -> None:
        super().__init__(node)
        self.connect_timeout = settings.COSMOS_SSH_CONNECT_TIMEOUT
        self.stall_seconds = settings.COSMOS_SSH_STALL_SECONDS
        self.reconnect_seconds = settings.COSMOS_SSH_RECONNECT_SECONDS
        self.backoff = Backoff(attempts=settings.COSMOS_SSH_RETRIES, base=settings.COSMOS_SSH_RETRY_DELAY)
        self._client: paramiko.SSHClient | None = None
        self._jump: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._standin: str | None = None

    # --- connection --------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.node.username}@{self.node.host}:{self.node.port}"

    def _new_client(self, host: str, port: int, key_text: str) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        known = host if port == 22 else f"[{host}]:{port}"
        pinned = parse_host_key(key_text)
        client.get_host_keys().add(known, pinned.get_name(), pinned)
        client.set_missing_host_key_policy(_PinnedKeyPolicy())
        return client

    def _auth_options(self) -> dict:
        if self.node.key_path:
            key = Path(self.node.key_path).expanduser()
            if not key.is_file():
                raise AuthenticationError(f"node {self.node.name}: key file {key} does not exist")
            return {"key_filename": str(key), "look_for_keys": False, "allow_agent": True}
        return {"look_for_keys": True, "allow_agent": True}

    def _connect_client(self, client, host: str, port: int, username: str, sock) -> None:
        try:
            client.connect(
                host,
                port=port,
                username=username,
                sock=sock,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                transport_factory=_transport_factory,
                **self._auth_options(),
            )
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"the host key of {host}:{port} has changed: it is now {fingerprint(exc.key)}, the node "
                f"trusts {fingerprint(exc.expected_key)}. If the server was really re-installed, trust the "
                f"new key with: manage.py cosmos_node trust {self.node.name} "
                f"--trust-host-key {fingerprint(exc.key)}"
            ) from exc
        except paramiko.AuthenticationException as exc:
            how = f"key {self.node.key_path}" if self.node.key_path else "the SSH agent and ~/.ssh keys"
            raise AuthenticationError(f"{username}@{host}:{port} refused {how}: {_describe(exc)}") from exc

    def _connect(self) -> paramiko.SSHClient:
        if (
            self._client is not None
            and self._client.get_transport()
            and self._client.get_transport().is_active()
        ):
            return self._client
        self._drop()
        sock = None
        try:
            if self.node.jump_host:
                user, host, port = parse_jump(self.node.jump_host)
                self._jump = self._new_client(host, port, self.node.jump_host_key or "")
                self._connect_client(
                    self._jump, host, port, user, _open_socket(host, port, self.connect_timeout)
                )
                sock = self._jump.get_transport().open_channel(
                    "direct-tcpip",
                    (self.node.host, self.node.port),
                    ("127.0.0.1", 0),
                    timeout=self.connect_timeout,
                )
            else:
                sock = _open_socket(self.node.host, self.node.port, self.connect_timeout)
            client = self._new_client(self.node.host, self.node.port, self.node.host_key)
            self._connect_client(client, self.node.host, self.node.port, self.node.username, sock)
        except ConnectError:
            self._drop()
            raise
        except TRANSIENT as exc:
            self._drop()
            raise _Unreachable(f"cannot reach {self.address}: {_describe(exc)}") from exc
        client.get_transport().set_keepalive(settings.COSMOS_SSH_KEEPALIVE)
        self._client = client
        return client

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None or self._sftp.get_channel().closed:
            self._sftp = self._connect().open_sftp()
            self._sftp.get_channel().settimeout(self.stall_seconds)
        return self._sftp

    def _drop(self) -> None:
        for resource in (self._sftp, self._client, self._jump):
            if resource is not None:
                try:
                    resource.close()
                except Exception:  # closing a dead connection may fail in many ways; it is gone either way
                    logger.debug("closing a connection to %s failed", self.address, exc_info=True)
        self._sftp = self._client = self._jump = None

    def close(self) -> None:
        self._drop()

    def check_connection(self) -> None:
        """Connect and authenticate now (raising ConnectError with the reason if that fails)."""
        self._retrying("connecting", self._connect)

    def _retrying(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation``, retrying network failures with backoff; permanent failures raise at once."""
        last: BaseException | None = None
        for delay in [*self.backoff.delays(), None]:
            try:
                return operation()
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                last = exc
                self._drop()
                if delay is None:
                    break
                logger.info("%s on %s failed (%s); retrying in %.1f s", what, self.address, exc, delay)
                time.sleep(delay)
        attempts = self.backoff.attempts
        if isinstance(last, _Unreachable):
            raise ConnectError(f"{last} (gave up after {attempts} attempts)") from last
        raise TransferError(
            f"{what} on {self.address} failed: {_describe(last)} (after {attempts} attempts)"
        ) from last

    # --- commands --------------------------------------------------------------------------------------

    def _exec(self, command: str, *, timeout: float, stdin: bytes = b"") -> CommandResult:
        return self._finish_exec(self._start_exec(command, timeout=timeout, stdin=stdin))

    def _start_exec(self, command: str, *, timeout: float = 600.0, stdin: bytes = b"") -> paramiko.Channel:
        channel = self._connect().get_transport().open_session(timeout=self.connect_timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()  # end of input: a command reading stdin does not wait for more
        return channel

    def _finish_exec(
        self, channel: paramiko.Channel, *, cancelled: CancelCheck | None = None
    ) -> CommandResult:
        try:
            # A command whose output is a line or two: waiting for its end first cannot fill a pipe.
            deadline = time.monotonic() + (channel.gettimeout() or 600.0)
            while cancelled is not None and not channel.exit_status_ready():
                if cancelled():
                    raise TransferCancelled(f"stopped waiting for a command on {self.address}: cancelled")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"a command on {self.address} did not end in time")
                time.sleep(0.05)
            stdout = channel.makefile("rb").read()
            stderr = channel.makefile_stderr("rb").read()
            code = channel.recv_exit_status()
        finally:
            channel.close()
        return CommandResult(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))

    def shell(self, script: str, *, timeout: float = 60.0) -> CommandResult:
        """Run a shell snippet we wrote (user text never goes in; paths are quoted by the caller)."""
        return self._retrying("running a command", lambda: self._exec(script, timeout=timeout))

    def run_command(self, argv: list[str], *, timeout: float = 60.0, stdin: bytes = b"") -> CommandResult:
        command = shlex.join(argv)
        return self._retrying("running a command", lambda: self._exec(command, timeout=timeout, stdin=stdin))

    def stream_command(
        self,
        argv: list[str],
        *,
        on_output: Callable[[bytes], None],
        timeout: float = 24 * 3600.0,
        stdin: bytes = b"",
    ) -> int:
        """Not retried: a long command that was cut off is run again by whoever asked for it."""
        try:
            channel = self._connect().get_transport().open_session(timeout=self.connect_timeout)
            channel.set_combine_stderr(True)  # progress bars come on stderr, results on stdout
            channel.settimeout(timeout)
            try:
                channel.exec_command(shlex.join(argv))
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
                while True:
                    data = channel.recv(CHUNK)  # waits up to ``timeout`` for output
                    if not data:
                        return channel.recv_exit_status()
                    on_output(data)
            finally:
                channel.close()
        except TRANSIENT as exc:
            self._drop()
            raise TransferError(f"a command on {self.address} was cut off: {_describe(exc)}") from exc


class _Unreachable(Exception):
    """The TCP connection or SSH handshake failed (worth retrying)."""
