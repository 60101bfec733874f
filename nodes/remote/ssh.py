"""The `ssh` transport: GPU nodes reached with OpenSSH's protocol through paramiko.

This is the only module that imports paramiko. One authenticated connection per node is
opened lazily and reused by every operation, and reopened after a drop. Host keys are pinned:
only the key recorded with the node is accepted. Operations that fail on the network are
retried with exponential backoff and jitter; following a job's log survives a cut link by
reconnecting and resuming from the byte offset it had reached.
"""

import base64
import contextlib
import hashlib
import logging
import random
import shlex
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

import paramiko
from django.conf import settings

from nodes.remote.base import (
    CancelCheck,
    CommandResult,
    ConnectError,
    JobState,
    RemoteError,
    RemoteFile,
    TransferCancelled,
    TransferError,
    Transport,
    throttled,
    writing_locally,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK = 1 << 20
# SFTP requests of 255 KiB, the most OpenSSH's sftp-server takes in one message: paramiko's
# default 32 KiB costs a Python round of framing per 32 KiB and halves throughput.
SFTP_REQUEST = 255 * 1024
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


def fetch_host_key_via(*, jump: str, jump_key: str, key_path: str, host: str, port: int) -> paramiko.PKey:
    """The key a server presents, reached through a bastion whose own key is pinned."""
    from nodes.models import GpuNode

    user, jump_host, jump_port = parse_jump(jump)
    bastion = SSHTransport(
        GpuNode(
            name="bastion",
            transport="ssh",
            host=jump_host,
            port=jump_port,
            username=user,
            key_path=key_path,
            host_key=jump_key,
        )
    )
    try:
        bastion.check_connection()
        channel = (
            bastion._connect()
            .get_transport()
            .open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=bastion.connect_timeout)
        )
        return fetch_host_key(host, port, sock=channel)
    except TRANSIENT as exc:
        raise ConnectError(f"cannot reach {host}:{port} through {jump}: {_describe(exc)}") from exc
    finally:
        bastion.close()


class _PinnedKeyPolicy(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key) -> None:
        raise HostKeyError(
            f"{hostname} presented a {key.get_name()} host key, {fingerprint(key)}, but the node trusts "
            "a key of another type"
        )


class SSHTransport(Transport):
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

    def _exec(self, command: str, *, timeout: float) -> CommandResult:
        return self._finish_exec(self._start_exec(command, timeout=timeout))

    def _start_exec(self, command: str, *, timeout: float = 600.0) -> paramiko.Channel:
        channel = self._connect().get_transport().open_session(timeout=self.connect_timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
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

    def run_command(self, argv: list[str], *, timeout: float = 60.0) -> CommandResult:
        return self.shell(shlex.join(argv), timeout=timeout)

    # --- files -----------------------------------------------------------------------------------------

    def _makedirs(self, path: PurePosixPath) -> None:
        sftp = self._sftp_client()
        missing = []
        current = PurePosixPath(path)
        while True:
            try:
                sftp.stat(str(current))
                break
            except FileNotFoundError:
                missing.append(current)
                current = current.parent
        for folder in reversed(missing):
            try:
                sftp.mkdir(str(folder))
            except OSError:
                # Someone else may have made it meanwhile; anything else shows on the next stat.
                sftp.stat(str(folder))

    def makedirs(self, path: PurePosixPath) -> None:
        try:
            self._retrying(f"creating {path}", lambda: self._makedirs(path))
        except PermissionError as exc:
            raise RemoteError(f"cannot create {path} on {self.address}: permission denied") from exc

    def exists(self, path: PurePosixPath) -> bool:
        def probe() -> bool:
            try:
                self._sftp_client().stat(str(path))
                return True
            except FileNotFoundError:
                return False

        return self._retrying(f"looking for {path}", probe)

    def sha256_many(self, paths: list[PurePosixPath]) -> dict[PurePosixPath, str]:
        return self._retrying("computing checksums", lambda: self._sha256_many(paths))

    def _sha256_many(self, paths: list[PurePosixPath]) -> dict[PurePosixPath, str]:
        if not paths:
            return {}
        quoted = " ".join(shlex.quote(str(path)) for path in paths)
        result = self._exec(
            f'for f in {quoted}; do [ -f "$f" ] && [ ! -L "$f" ] && sha256sum -- "$f"; done; true',
            timeout=600,
        )
        digests = {}
        for line in result.stdout.splitlines():
            digest, _, name = line.partition("  ")
            if len(digest) == 64:
                digests[PurePosixPath(name)] = digest
        return digests

    def put_file(
        self,
        local: Path,
        remote: PurePosixPath,
        *,
        sha256: str | None = None,
        cancelled: CancelCheck | None = None,
    ) -> int:
        expected = sha256 or _local_sha256(Path(local))
        cancelled = throttled(cancelled)
        sent = 0

        def upload() -> None:
            nonlocal sent
            sent += self._upload_resuming(Path(local), remote, expected, cancelled)

        self._retrying(f"uploading {Path(local).name}", upload)
        return sent

    def put_files(
        self, files: dict[PurePosixPath, tuple[Path, str]], *, cancelled: CancelCheck | None = None
    ) -> int:
        """Upload several files, checksumming each on the node while the next one is sent.

        The node's sha256 of a file takes about as long as sending it; run one after the other
        they halve the upload speed. A file whose check did not confirm it (or whose connection
        dropped) goes through put_file, which resumes and verifies it alone. ``cancelled`` is
        asked between chunks and while waiting for a check: the upload stops at once, leaving
        only partial files, which a later upload resumes.
        """
        cancelled = throttled(cancelled)
        sent, checks = 0, []
        # Largest first: only the last file's check is not hidden behind another upload.
        ordered = sorted(files.items(), key=lambda item: Path(item[1][0]).stat().st_size, reverse=True)
        try:
            try:
                for remote, (local, digest) in ordered:
                    sent += self._send_part(Path(local), remote, cancelled)
                    part = shlex.quote(str(self.part_path(remote)))
                    checks.append((remote, digest, self._start_exec(f"sha256sum -- {part}")))
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                self._drop()
            confirmed = set()
            for remote, digest, channel in checks:
                try:
                    output = self._finish_exec(channel, cancelled=cancelled).stdout
                except Exception as exc:
                    if not _is_transient(exc):
                        raise
                    self._drop()
                    continue
                if output.split()[:1] == [digest]:
                    self._retrying(
                        f"renaming {remote.name}",
                        lambda r=remote: self._sftp_client().posix_rename(str(self.part_path(r)), str(r)),
                    )
                    confirmed.add(remote)
        finally:
            for _, _, channel in checks:
                channel.close()  # a check still running when the upload stopped: nobody reads it
        for remote, (local, digest) in files.items():
            if remote not in confirmed:
                sent += self.put_file(local, remote, sha256=digest, cancelled=cancelled)
        return sent

    def _send_part(self, local: Path, remote: PurePosixPath, cancelled: CancelCheck | None = None) -> int:
        """Append to ``<remote>.part`` what it lacks of ``local``; returns bytes sent (not yet verified)."""
        sftp = self._sftp_client()
        part = str(self.part_path(remote))
        size = local.stat().st_size
        try:
            start = sftp.stat(part).st_size
        except FileNotFoundError:
            start = 0
        if start > size:
            sftp.remove(part)
            start = 0
        self._makedirs(remote.parent)
        with open(local, "rb") as source, sftp.open(part, "r+b" if start else "wb") as target:
            target.MAX_REQUEST_SIZE = SFTP_REQUEST
            target.set_pipelined(True)
            source.seek(start)
            target.seek(start)
            while chunk := source.read(CHUNK):
                if cancelled is not None and cancelled():
                    raise TransferCancelled(f"uploading {local.name} to {self.address} stopped: cancelled")
                target.write(chunk)
        return size - start

    def _upload_resuming(
        self, local: Path, remote: PurePosixPath, expected: str, cancelled: CancelCheck | None = None
    ) -> int:
        """Send what the remote partial file lacks, verify the whole by sha256, then rename into place.

        The partial file has a fixed name, so an upload cut by a dropped link continues where it
        stopped on the next attempt instead of starting over.
        """
        sent = self._send_part(local, remote, cancelled)
        part = self.part_path(remote)
        check = self._finish_exec(
            self._start_exec(f"sha256sum -- {shlex.quote(str(part))}"), cancelled=cancelled
        )
        if check.stdout.split()[:1] != [expected]:
            self._sftp_client().remove(str(part))
            raise paramiko.SSHException(f"{remote.name}: the uploaded copy does not match its sha256")
        self._sftp_client().posix_rename(str(part), str(remote))
        return sent

    def get_file(self, remote: PurePosixPath, local: Path, *, sha256: str | None = None) -> int:
        """Download through a partial file next to ``local``; this machine's write errors are
        LocalStorageError (raised at once: retrying over the network cannot fix a full disk)."""
        local = Path(local)
        received = 0

        def download() -> None:
            nonlocal received
            expected = sha256 or self._sha256_many([remote]).get(remote)
            if expected is None:
                raise RemoteError(f"{remote} does not exist on {self.address}")
            part = local.with_name(f".{local.name}.part")
            with writing_locally(local.parent):
                local.parent.mkdir(parents=True, exist_ok=True)
                target = open(part, "wb")  # noqa: SIM115 (closed in the finally below)
            digest = hashlib.sha256()
            try:
                with self._sftp_client().open(str(remote), "rb") as source:
                    size = source.stat().st_size
                    source.MAX_REQUEST_SIZE = SFTP_REQUEST
                    source.prefetch(size)
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        with writing_locally(local.parent):
                            target.write(chunk)
                with writing_locally(local.parent):
                    target.close()  # flushes: a full disk may show only here
                if digest.hexdigest() != expected:
                    raise paramiko.SSHException(
                        f"{remote.name}: the downloaded copy does not match its sha256"
                    )
                with writing_locally(local.parent):
                    part.replace(local)
            finally:
                with contextlib.suppress(OSError):
                    target.close()
                with contextlib.suppress(OSError):
                    part.unlink(missing_ok=True)
            received += size

        self._retrying(f"downloading {remote.name}", download)
        return received

    def write_text(self, remote: PurePosixPath, text: str) -> None:
        def write() -> None:
            sftp = self._sftp_client()
            part = f"{remote}.part"
            with sftp.open(part, "wb") as handle:
                handle.write(text.encode())
            sftp.posix_rename(part, str(remote))

        self.makedirs(remote.parent)
        self._retrying(f"writing {remote.name}", write)

    def read_bytes(self, remote: PurePosixPath, offset: int = 0, limit: int = 1 << 20) -> bytes:
        def read() -> bytes:
            try:
                with self._sftp_client().open(str(remote), "rb") as handle:
                    handle.seek(offset)
                    return handle.read(limit)
            except FileNotFoundError:
                return b""

        return self._retrying(f"reading {remote.name}", read)

    def symlink(self, target: PurePosixPath, link: PurePosixPath) -> None:
        def make() -> None:
            sftp = self._sftp_client()
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(str(link))
            sftp.symlink(str(target), str(link))

        self.makedirs(link.parent)
        self._retrying(f"linking {link.name}", make)

    def list_files(self, folder: PurePosixPath) -> list[RemoteFile]:
        def walk() -> list[RemoteFile]:
            sftp, found, pending = self._sftp_client(), [], [PurePosixPath(folder)]
            while pending:
                current = pending.pop()
                try:
                    entries = sftp.listdir_attr(str(current))
                except FileNotFoundError:
                    continue
                for entry in entries:
                    path = current / entry.filename
                    if stat.S_ISDIR(entry.st_mode):
                        pending.append(path)
                    elif stat.S_ISREG(entry.st_mode) and not entry.filename.startswith("."):
                        found.append(RemoteFile(path=str(path.relative_to(folder)), size=entry.st_size))
            return sorted(found, key=lambda item: item.path)

        return self._retrying(f"listing {folder}", walk)

    def _remove_tree(self, path: PurePosixPath) -> None:
        self.run_command(["rm", "-rf", "--", str(path)])

    def _remove_unless_regular(self, paths: list[PurePosixPath]) -> None:
        quoted = " ".join(shlex.quote(str(path)) for path in paths)
        # rm -rf removes a symbolic link itself and never follows links inside a folder.
        result = self.shell(
            f"status=0; for f in {quoted}; do "
            'if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then rm -rf -- "$f" || status=1; fi; '
            "done; exit $status"
        )
        if not result.ok:
            raise TransferError(f"cannot clear cache entries on {self.address}: {result.stderr.strip()}")

    # --- processes -------------------------------------------------------------------------------------

    def sim_command(self) -> list[str]:
        """The stand-in's zipapp, copied to the node once per version (its name carries its checksum)."""
        if self._standin is None:
            from cosmos.standin_archive import archive_name, standin_archive
            from nodes.remote.local import standin_archive_path

            _, digest = standin_archive()
            remote = self.root / "bin" / archive_name(digest)
            if self.sha256(remote) != digest:
                self.put_file(standin_archive_path(), remote, sha256=digest)
            self._standin = str(remote)
        return [self.node.python or "python3", self._standin]

    def _start_detached(self, job_dir: PurePosixPath) -> None:
        # No pty and all output redirected: sshd does not wait for the job, and closing the
        # channel (or losing the link) sends it no hangup.
        result = self.shell(
            f"(cd {shlex.quote(str(job_dir))} && exec setsid sh job.sh) < /dev/null > /dev/null 2>&1 &"
        )
        if not result.ok:
            raise RemoteError(f"starting the job in {job_dir} failed: {result.stderr.strip()}")

    def _group_alive(self, pgid: int) -> bool:
        # `kill -0` also succeeds for zombies (finished, not yet reaped): look for a live member.
        return self.shell(_GROUP_ALIVE.format(pgid=int(pgid))).ok

    def _signal_group(self, pgid: int, signum: int) -> None:
        self.shell(f"kill -{int(signum)} -- -{int(pgid)} 2>/dev/null; true")

    def job_state(self, job_dir: PurePosixPath) -> JobState:
        """Exit code and liveness in one round trip."""
        return self._retrying("checking the job", lambda: self._job_state(job_dir))

    def _job_state(self, job_dir: PurePosixPath) -> JobState:
        script = _JOB_STATE.format(
            job_dir=shlex.quote(str(job_dir)), alive=_GROUP_ALIVE.format(pgid='"$pgid"')
        )
        fields = dict(
            item.split("=", 1) for item in self._exec(script, timeout=60).stdout.split() if "=" in item
        )
        exit_text = fields.get("exit", "")
        exit_code = int(exit_text) if exit_text.lstrip("-").isdigit() else None
        return JobState(exit_code=exit_code, alive=fields.get("alive") == "1")

    def follow(self, job_dir: PurePosixPath, offset: int = 0, *, poll: float = 0.2) -> Iterator[bytes]:
        """The job's log over one long-lived channel; after a drop, reconnect and resume at the offset."""
        log = job_dir / "job.log"
        while True:
            try:
                for data in self._follow_channel(job_dir, offset):
                    offset += len(data)
                    yield data
                state = self._job_state(job_dir)
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                logger.warning(
                    "lost the log stream of %s on %s (%s); reconnecting", job_dir.name, self.address, exc
                )
                self._drop()
                yield from self._reconnect()
                continue
            if state.finished or not state.alive:
                yield from self._rest_of(log, offset)
                return
            # The follower ended while the job lives on (its wrapper shell was killed): look again soon.
            yield b""
            time.sleep(max(poll, 1.0))

    def _follow_channel(self, job_dir: PurePosixPath, offset: int) -> Iterator[bytes]:
        heartbeat = max(0.2, self.stall_seconds / 4)
        channel = self._connect().get_transport().open_session(timeout=self.connect_timeout)
        try:
            channel.settimeout(0.0)
            channel.exec_command(
                _FOLLOW.format(
                    job_dir=shlex.quote(str(job_dir)), start=offset + 1, heartbeat=f"{heartbeat:g}"
                )
            )
            heard = time.monotonic()
            while True:
                got_data = False
                while channel.recv_ready():
                    data = channel.recv(CHUNK)
                    if not data:
                        break
                    got_data = True
                    yield data
                while channel.recv_stderr_ready():
                    channel.recv_stderr(CHUNK)
                    heard = time.monotonic()
                if got_data:
                    heard = time.monotonic()
                elif channel.exit_status_ready() and not channel.recv_ready():
                    return
                elif time.monotonic() - heard > self.stall_seconds:
                    raise _Stalled(f"no data or heartbeat for {self.stall_seconds:g} s")
                else:
                    yield b""
                    time.sleep(0.1)
        finally:
            channel.close()

    def _reconnect(self) -> Iterator[bytes]:
        """Try to connect again until it works or the reconnect window closes (yielding while waiting)."""
        deadline = time.monotonic() + self.reconnect_seconds
        delay = self.backoff.base
        while True:
            try:
                self._connect()
                logger.info("reconnected to %s", self.address)
                return
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                if time.monotonic() > deadline:
                    raise ConnectError(
                        f"lost {self.address} for over {self.reconnect_seconds:g} s ({_describe(exc)}); "
                        "the job may still be running there"
                    ) from exc
            yield b""
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 5.0)


class _Unreachable(Exception):
    """The TCP connection or SSH handshake failed (worth retrying)."""


def _local_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# A process group is alive while it has a member that is not a zombie.
_GROUP_ALIVE = (
    "ps -e -o pgid=,stat= | awk -v g={pgid} '$1 == g && $2 !~ /^Z/ {{ found = 1 }} END {{ exit !found }}'"
)

_JOB_STATE = """cd {job_dir} 2>/dev/null || {{ echo exit= alive=0; exit 0; }}
exit_code=$(cat job.exit 2>/dev/null)
pgid=$(cat job.pid 2>/dev/null)
alive=0
if [ -n "$pgid" ] && {alive}; then alive=1; fi
echo "exit=$exit_code alive=$alive"
"""

# Stream job.log from a byte offset until the job's shell ends, with heartbeats on stderr so a
# silent model (Transfer1 prints nothing while sampling) is not mistaken for a dead link.
_FOLLOW = """cd {job_dir} || exit 3
pid=$(cat job.pid 2>/dev/null)
[ -n "$pid" ] || exit 4
( while :; do echo . >&2 || exit 0; sleep {heartbeat}; done ) &
beat=$!
tail -c +{start} --pid="$pid" -s 0.5 -F job.log 2>/dev/null
kill "$beat" 2>/dev/null
exit 0
"""
