"""The `local` transport: the node is this machine (the simulated node, or a GPU in this box).

Files are copied with the same atomic rename as remote transfers, and jobs run through the same
detached job script, so a local run behaves exactly like a remote one and survives the runner.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from django.conf import settings

from cosmos.standin_archive import PACKAGE, write_standin_archive
from nodes.remote.base import (
    CancelCheck,
    CommandResult,
    LocalStorageError,
    RemoteError,
    RemoteFile,
    TransferCancelled,
    TransferError,
    Transport,
)

# The stand-in package; `python STANDIN ...` runs it from the source tree. Nodes run the zipapp.
STANDIN = PACKAGE
CHUNK = 1 << 20


def standin_archive_path() -> Path:
    """The stand-in as one file (a zipapp named by its checksum), written once into the data folder."""
    return write_standin_archive(Path(settings.COSMOS_DATA_DIR) / "bin")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _writing(source: Path, destination: Path, *, saving: bool) -> Iterator[None]:
    """Errors writing ``destination``: this machine's storage refused (saving) or a failed transfer."""
    try:
        yield
    except OSError as exc:
        if saving:
            raise LocalStorageError(destination.parent, exc) from exc
        raise TransferError(f"copying {source} to {destination} failed: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _reading(source: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise TransferError(f"reading {source} failed: {exc.strerror or exc}") from exc


def _copy_atomically(
    source: Path,
    destination: Path,
    sha256: str | None,
    *,
    cancelled: CancelCheck | None = None,
    saving: bool = False,
) -> int:
    """Copy through a temporary file in the destination's folder, verify it, rename it into place.

    ``saving``: the destination is this machine's own storage (a download), so failing to write
    it is a LocalStorageError; otherwise (an upload to the node's folder) a TransferError.
    ``cancelled`` is asked between chunks. Returns the bytes copied.
    """
    writing = functools.partial(_writing, source, destination, saving=saving)
    reading = functools.partial(_reading, source)
    with writing():
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
        )
    temporary, copied = Path(name), 0
    target = os.fdopen(handle, "wb")
    try:
        with reading():
            reader = open(source, "rb")  # noqa: SIM115 (closed by the with below)
        with reader:
            while True:
                with reading():
                    chunk = reader.read(CHUNK)
                if not chunk:
                    break
                if cancelled is not None and cancelled():
                    raise TransferCancelled(f"copying {source} to {destination} stopped: cancelled")
                with writing():
                    target.write(chunk)
                copied += len(chunk)
        with writing():
            target.close()  # flushes: a full disk may show only here
        if sha256 is not None and _file_sha256(temporary) != sha256:
            raise TransferError(f"copying {source} to {destination}: the copy does not match its sha256")
        with writing():
            os.replace(temporary, destination)
    finally:
        with contextlib.suppress(OSError):
            target.close()
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    return copied


def _group_has_running_member(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split(" ", 3)[:3]
        if int(pgrp) == pgid and state not in {"Z", "X"}:
            return True
    return False


class LocalTransport(Transport):
    def makedirs(self, path: PurePosixPath) -> None:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemoteError(f"cannot create {path}: {exc.strerror}") from exc

    def exists(self, path: PurePosixPath) -> bool:
        return Path(path).exists()

    def sha256_many(self, paths: list[PurePosixPath]) -> dict[PurePosixPath, str]:
        digests = {}
        for path in paths:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    digests[path] = _file_sha256(Path(path))
        return digests

    def put_file(
        self,
        local: Path,
        remote: PurePosixPath,
        *,
        sha256: str | None = None,
        cancelled: CancelCheck | None = None,
    ) -> int:
        return _copy_atomically(Path(local), Path(remote), sha256, cancelled=cancelled)

    def get_file(self, remote: PurePosixPath, local: Path, *, sha256: str | None = None) -> int:
        return _copy_atomically(Path(remote), Path(local), sha256, saving=True)

    def write_text(self, remote: PurePosixPath, text: str, *, mode: int | None = None) -> None:
        path = Path(remote)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.part")
        if mode is None:
            temporary.write_text(text, encoding="utf-8")
        else:
            # Created with its final mode (O_EXCL: never a file or link someone left there), and set
            # again past the umask: never readable by others, not even while it is written.
            temporary.unlink(missing_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            descriptor = os.open(temporary, flags, mode)
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    os.fchmod(descriptor, mode)
                    handle.write(text)
            except BaseException:
                temporary.unlink(missing_ok=True)  # never a half-written secret left behind
                raise
        os.replace(temporary, path)

    def read_bytes(self, remote: PurePosixPath, offset: int = 0, limit: int = 1 << 20) -> bytes:
        try:
            with open(remote, "rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except (FileNotFoundError, IsADirectoryError):
            return b""

    def symlink(self, target: PurePosixPath, link: PurePosixPath) -> None:
        path = Path(link)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.symlink_to(target)

    def list_files(self, folder: PurePosixPath) -> list[RemoteFile]:
        base = Path(folder)
        if not base.is_dir():
            return []
        return sorted(
            (
                RemoteFile(path=str(path.relative_to(base)), size=path.stat().st_size)
                for path in base.rglob("*")
                if path.is_file() and not path.name.startswith(".")
            ),
            key=lambda item: item.path,
        )

    def _remove_tree(self, path: PurePosixPath) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def _remove_unless_regular(self, paths: list[PurePosixPath]) -> None:
        for path in map(Path, paths):
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISDIR(mode):
                    shutil.rmtree(path)  # never follows the links inside
                elif not stat.S_ISREG(mode):
                    path.unlink()  # a link itself, not what it points to
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TransferError(f"cannot clear {path} from the cache: {exc.strerror or exc}") from exc

    def run_command(self, argv: list[str], *, timeout: float = 60.0, stdin: bytes = b"") -> CommandResult:
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, input=stdin)
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{argv[0]}: timed out after {timeout:.0f} s")
        return CommandResult(
            done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        )

    def stream_command(
        self,
        argv: list[str],
        *,
        on_output: Callable[[bytes], None],
        timeout: float = 24 * 3600.0,
        stdin: bytes = b"",
    ) -> int:
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            on_output(f"{argv[0]}: command not found\n".encode())
            return 127
        with process:
            with contextlib.suppress(BrokenPipeError):  # a command that reads no input may be gone already
                process.stdin.write(stdin)
                process.stdin.close()
            deadline = time.monotonic() + timeout  # checked as output comes, like the ssh channel's
            while data := process.stdout.read1(CHUNK):
                on_output(data)
                if time.monotonic() > deadline:
                    process.kill()
                    on_output(f"{argv[0]}: timed out after {timeout:.0f} s\n".encode())
                    return 124
            return process.wait()

    def sim_command(self) -> list[str]:
        return [sys.executable, str(standin_archive_path())]

    def _start_detached(self, job_dir: PurePosixPath) -> None:
        # `setsid ... &` inside a shell that exits at once: the job is re-parented to init, so it
        # outlives this process and never lingers as our zombie.
        subprocess.run(
            ["sh", "-c", "setsid sh job.sh < /dev/null > /dev/null 2>&1 &"],
            cwd=job_dir,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _group_alive(self, pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # kill(0) also succeeds on zombies: finished processes their parent has not reaped yet.
        return _group_has_running_member(pgid)

    def _signal_group(self, pgid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)
