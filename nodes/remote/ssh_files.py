"""The `ssh` transport's files: SFTP uploads that resume and verify, downloads, the job folder.

Uploads go through a partial file with a fixed name, so an upload cut by a dropped link resumes
where it stopped; every file is verified by sha256 before it is renamed into place.
"""

import contextlib
import hashlib
import shlex
import stat
from pathlib import Path, PurePosixPath

import paramiko

from nodes.remote.base import (
    CancelCheck,
    RemoteError,
    RemoteFile,
    TransferCancelled,
    TransferError,
    throttled,
    writing_locally,
)
from nodes.remote.ssh_connect import CHUNK, SSHConnection, _is_transient

# SFTP requests of 255 KiB, the most OpenSSH's sftp-server takes in one message: paramiko's
# default 32 KiB costs a Python round of framing per 32 KiB and halves throughput.
SFTP_REQUEST = 255 * 1024


class SSHFiles(SSHConnection):
    """Files on the node over SFTP, and shell one-liners on them (checksums, removal)."""

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

    def write_text(self, remote: PurePosixPath, text: str, *, mode: int | None = None) -> None:
        def write() -> None:
            sftp = self._sftp_client()
            part = f"{remote}.part"
            with sftp.open(part, "wb") as handle:
                handle.write(text.encode())
            sftp.posix_rename(part, str(remote))

        self.makedirs(remote.parent)
        if mode is None:
            self._retrying(f"writing {remote.name}", write)
        else:
            self._retrying(f"writing {remote.name}", lambda: self._write_private(remote, text, mode))

    def _write_private(self, remote: PurePosixPath, text: str, mode: int) -> None:
        """Write a file that no one else may read at any moment, such as a job's secrets.

        SFTP's open (paramiko's) cannot give a new file its mode, and the server's umask would make
        it readable by all until a chmod. So the file is made inside a folder of its own that only
        the owner can enter (mkdir's mode is honoured), narrowed to ``mode`` there, and only then
        renamed into place. A leftover of a write cut short is removed first.
        """
        sftp = self._sftp_client()
        private = self.private_folder(remote)
        part = private / remote.name
        self._remove_private(sftp, private, part)
        sftp.mkdir(str(private), mode=0o700)
        try:
            with sftp.open(str(part), "wb") as handle:
                handle.write(text.encode())
            sftp.chmod(str(part), mode)
            sftp.posix_rename(str(part), str(remote))
        finally:
            self._remove_private(sftp, private, part)

    @staticmethod
    def _remove_private(sftp: paramiko.SFTPClient, private: PurePosixPath, part: PurePosixPath) -> None:
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(str(part))
        with contextlib.suppress(FileNotFoundError):
            sftp.rmdir(str(private))

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


def _local_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
