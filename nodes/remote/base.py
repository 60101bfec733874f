"""What the runner needs from a GPU node, whatever the way to reach it.

Every node follows the remote job protocol of ARCHITECTURE.md §3: inputs in a content-addressed
cache, one folder per run holding spec, job.pid, job.log, job.exit and out/, and jobs started
detached so that losing the connection or the runner never kills GPU work. Transports
implement the file and process primitives; the job logic here is shared.
"""

import contextlib
import re
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class RemoteError(Exception):
    """A node operation failed. ``kind`` is the run failure kind it maps to."""

    kind = "transfer"


class ConnectError(RemoteError):
    kind = "connect"


class TransferError(RemoteError):
    kind = "transfer"


class UnsafePathError(RemoteError):
    """A deletion outside a run's own folder was refused."""

    kind = "config"


class TransferCancelled(RemoteError):
    """An upload stopped halfway because the runs it was for were cancelled.

    What was sent stays in the partial file (a later upload resumes it); nothing is ever left
    under the final name unverified, so it is never taken for a cached copy.
    """


class LocalStorageError(Exception):
    """Writing to this machine's own disk failed: no permission, read-only, full, over quota, a
    file where a folder should be. Not the node's fault, and not a network error to retry at once.
    """

    def __init__(self, folder: Path, error: OSError) -> None:
        self.folder = Path(folder)
        self.error = error
        where = error.filename or folder
        super().__init__(f"{error.strerror or error} ({where})")


@contextlib.contextmanager
def writing_locally(folder: Path) -> Iterator[None]:
    """Turn an OSError of the enclosed local writes into LocalStorageError about ``folder``."""
    try:
        yield
    except OSError as exc:
        raise LocalStorageError(folder, exc) from exc


# How often an upload asks whether it is still wanted: each ask may read the database.
CANCEL_CHECK_SECONDS = 0.25

CancelCheck = Callable[[], bool]


class ThrottledCheck:
    """Ask ``check`` at most once per ``interval`` seconds, and keep a yes once it was given."""

    def __init__(self, check: CancelCheck, *, interval: float = CANCEL_CHECK_SECONDS) -> None:
        self.check, self.interval = check, interval
        self.asked_at: float | None = None
        self.answer = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.answer and (self.asked_at is None or now - self.asked_at >= self.interval):
            self.asked_at = now
            self.answer = bool(self.check())
        return self.answer


def throttled(check: CancelCheck | None) -> CancelCheck | None:
    if check is None or isinstance(check, ThrottledCheck):
        return check
    return ThrottledCheck(check)


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class JobState:
    exit_code: int | None  # None until job.exit is written
    alive: bool  # some process of the job's process group still exists

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    @property
    def lost(self) -> bool:
        """The processes are gone but never wrote an exit code (killed, node rebooted)."""
        return self.exit_code is None and not self.alive


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the folder that was listed
    size: int


class Transport(ABC):
    """File and process operations on one node, all paths being paths on that node."""

    def __init__(self, node) -> None:
        self.node = node
        self.root = PurePosixPath(node.root)

    # --- files -----------------------------------------------------------------------------------

    @abstractmethod
    def makedirs(self, path: PurePosixPath) -> None: ...

    @abstractmethod
    def exists(self, path: PurePosixPath) -> bool: ...

    @abstractmethod
    def sha256_many(self, paths: list[PurePosixPath]) -> dict[PurePosixPath, str]:
        """sha256 hex digests of the regular files among ``paths`` (one round trip).

        Folders, symbolic links and other special files are left out, as if missing.
        """

    def sha256(self, path: PurePosixPath) -> str | None:
        """The file's sha256 hex digest, or None when it does not exist."""
        return self.sha256_many([path]).get(path)

    @abstractmethod
    def put_file(
        self,
        local: Path,
        remote: PurePosixPath,
        *,
        sha256: str | None = None,
        cancelled: CancelCheck | None = None,
    ) -> int:
        """Copy ``local`` to ``remote`` atomically, verified against ``sha256``; returns bytes sent.

        ``cancelled`` is asked between chunks; when it says yes, TransferCancelled is raised.
        """

    @abstractmethod
    def get_file(self, remote: PurePosixPath, local: Path, *, sha256: str | None = None) -> int:
        """Copy ``remote`` to ``local`` atomically, verified against ``sha256``; returns bytes received.

        Failing to write ``local`` (this machine's disk) raises LocalStorageError.
        """

    @abstractmethod
    def write_text(self, remote: PurePosixPath, text: str, *, mode: int | None = None) -> None:
        """Write ``remote`` atomically (readers see the old file or the whole new one).

        ``mode`` (0o600 for a secret) holds from the file's creation on: it is never readable by
        anyone else, not even before the write ends. None: the node's default permissions.
        """

    @staticmethod
    def private_folder(remote: PurePosixPath) -> PurePosixPath:
        """Where a transport may make a file with a mode (write_text) before it is renamed into place."""
        return remote.parent / f".{remote.name}.private"

    def remove_secret_file(self, remote: PurePosixPath) -> None:
        """Delete a file written with a mode, and whatever a write of it cut short left behind."""
        result = self.run_command(["rm", "-rf", "--", str(remote), str(self.private_folder(remote))])
        if not result.ok:
            raise RemoteError(f"cannot remove {remote}: {result.stderr.strip()}")

    @abstractmethod
    def read_bytes(self, remote: PurePosixPath, offset: int = 0, limit: int = 1 << 20) -> bytes:
        """Up to ``limit`` bytes from ``offset``; empty when the file is missing or has no more."""

    @abstractmethod
    def symlink(self, target: PurePosixPath, link: PurePosixPath) -> None: ...

    @abstractmethod
    def list_files(self, folder: PurePosixPath) -> list[RemoteFile]:
        """Regular files below ``folder`` (recursively), or [] when it does not exist."""

    @abstractmethod
    def _remove_tree(self, path: PurePosixPath) -> None: ...

    @abstractmethod
    def _remove_unless_regular(self, paths: list[PurePosixPath]) -> None:
        """Delete whatever is at each path unless it is a regular file (a folder with all it holds, a
        symbolic link itself, never its target, a fifo…). Paths are checked by the caller."""

    # --- processes -------------------------------------------------------------------------------

    @abstractmethod
    def run_command(self, argv: list[str], *, timeout: float = 60.0, stdin: bytes = b"") -> CommandResult:
        """Run a short command on the node (every argument is quoted; no shell features).

        ``stdin`` is what the command reads on its standard input: the way to hand it a secret (a
        token), which on its command line would show in ``ps`` and the shell's history.
        """

    @abstractmethod
    def stream_command(
        self,
        argv: list[str],
        *,
        on_output: Callable[[bytes], None],
        timeout: float = 24 * 3600.0,
        stdin: bytes = b"",
    ) -> int:
        """Run a long command on the node, handing its output (stdout and stderr, as it comes) to
        ``on_output``; returns its exit code. For progress shown while a download runs."""

    @abstractmethod
    def sim_command(self) -> list[str]:
        """How to start the Cosmos stand-in on this node (interpreter and script)."""

    @abstractmethod
    def _start_detached(self, job_dir: PurePosixPath) -> None:
        """Run ``job_dir/job.sh`` in a new session, detached from this process."""

    @abstractmethod
    def _group_alive(self, pgid: int) -> bool: ...

    @abstractmethod
    def _signal_group(self, pgid: int, signum: int) -> None: ...

    def close(self) -> None:  # noqa: B027 (most transports hold nothing to release)
        """Release connections; the node's jobs keep running."""

    # --- the job protocol, shared by all transports ------------------------------------------------

    def run_dir(self, run_id: str) -> PurePosixPath:
        return self.root / "runs" / run_id

    def cache_path(self, digest: str) -> PurePosixPath:
        return self.root / "cache" / "sha256" / digest

    def remove_run_dir(self, job_dir: PurePosixPath) -> None:
        """Delete a run's folder, and refuse anything that is not exactly one run folder."""
        runs = self.root / "runs"
        if job_dir.parent != runs or job_dir.name in {"", ".", ".."}:
            raise UnsafePathError(f"refusing to delete {job_dir}: not a run folder under {runs}")
        self._remove_tree(job_dir)

    def launch(self, job_dir: PurePosixPath, script: str, *, timeout: float = 15.0) -> int:
        """Start the job detached and return its process-group id once the job has written it."""
        self.write_text(job_dir / "job.sh", script)
        self._start_detached(job_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid_text = self.read_bytes(job_dir / "job.pid").decode().strip()
            if pid_text.isdigit():
                return int(pid_text)
            if pid_text:  # a recovery gave the job up first (runs/remote/jobs.py): it will not start
                raise RemoteError(f"the job in {job_dir} was given up before it started")
            time.sleep(0.02)
        raise RemoteError(f"the job in {job_dir} did not start within {timeout:.0f} s (no job.pid)")

    def job_state(self, job_dir: PurePosixPath) -> JobState:
        exit_text = self.read_bytes(job_dir / "job.exit").decode().strip()
        exit_code = int(exit_text) if exit_text.lstrip("-").isdigit() else None
        pid_text = self.read_bytes(job_dir / "job.pid").decode().strip()
        alive = pid_text.isdigit() and self._group_alive(int(pid_text))
        return JobState(exit_code=exit_code, alive=alive)

    def follow(self, job_dir: PurePosixPath, offset: int = 0, *, poll: float = 0.2) -> Iterator[bytes]:
        """The job's log from ``offset`` as it grows, until the job has ended and all is read.

        Yields b"" while the job is quiet, so the caller can update time-based progress.
        Transfer1 prints nothing for minutes while it samples: silence is not failure.
        """
        log = job_dir / "job.log"
        while True:
            data = self.read_bytes(log, offset)
            if data:
                offset += len(data)
                yield data
                continue
            state = self.job_state(job_dir)
            if state.finished or not state.alive:
                # The job may have written its last lines between our read and the state check.
                yield from self._rest_of(log, offset)
                return
            yield b""
            time.sleep(poll)

    def _rest_of(self, log: PurePosixPath, offset: int) -> Iterator[bytes]:
        while data := self.read_bytes(log, offset):
            offset += len(data)
            yield data

    def stage_in_cache(self, files: dict[str, Path], *, cancelled: CancelCheck | None = None) -> int:
        """Put each file (keyed by its sha256) in the node's input cache; returns the bytes sent.

        One round trip checks every cached copy: an input used by fifty runs is sent once per
        node, and a cached copy that no longer matches its checksum is sent again. Copies found
        in place are touched, so pruning by age spares what is still in use. Anything else found
        under a cache name (a folder, a symbolic link) is removed first, or it would block that
        input for good. ``cancelled`` (asked a few times a second at most) stops the upload.
        """
        cancelled = throttled(cancelled)
        if cancelled is not None and cancelled():
            raise TransferCancelled("the upload was cancelled before it started")
        paths = {digest: self.cache_path(digest) for digest in files}
        on_node = self.sha256_many(sorted(set(paths.values())))
        missing = {
            paths[digest]: (source, digest)
            for digest, source in files.items()
            if on_node.get(paths[digest]) != digest
        }
        self.touch(sorted(path for path, digest in on_node.items() if digest in files))
        if missing:
            self.clear_cache_entries(sorted(missing))
        return self.put_files(missing, cancelled=cancelled)

    def clear_cache_entries(self, paths: list[PurePosixPath]) -> None:
        """Remove what sits under these cache names (and their partial files) unless it is a regular file.

        Only ever inside <root>/cache/sha256, and only names that are sha256 digests: anything
        else is refused.
        """
        cache = self.root / "cache" / "sha256"
        for path in paths:
            if path.parent != cache or not SHA256_HEX.fullmatch(path.name):
                raise UnsafePathError(f"refusing to clear {path}: not a cache entry under {cache}")
        self._remove_unless_regular([entry for path in paths for entry in (path, self.part_path(path))])

    @staticmethod
    def part_path(remote: PurePosixPath) -> PurePosixPath:
        """Where an upload to ``remote`` collects its bytes until they are verified."""
        return PurePosixPath(f"{remote}.part")

    def put_files(
        self, files: dict[PurePosixPath, tuple[Path, str]], *, cancelled: CancelCheck | None = None
    ) -> int:
        """Upload several files (remote path → local path and sha256), each verified; returns bytes sent."""
        cancelled = throttled(cancelled)
        return sum(
            self.put_file(local, remote, sha256=digest, cancelled=cancelled)
            for remote, (local, digest) in files.items()
        )

    def touch(self, paths: list[PurePosixPath]) -> None:
        """Mark cached files as just used, so pruning by age spares what runs still use."""
        if paths:
            self.run_command(["touch", "-c", "--", *map(str, paths)])

    def running_containers(self, job_id: str) -> list[str]:
        """Docker containers still running for this job (by the label every job's container gets)."""
        result = self.run_command(["docker", "ps", "-q", "--filter", f"label=cosmos.job_id={job_id}"])
        return result.stdout.split() if result.ok else []

    def kill_containers(self, job_id: str) -> bool:
        """`docker kill` the job's containers; True once none is left."""
        containers = self.running_containers(job_id)
        if containers:
            self.run_command(["docker", "kill", *containers])
        return not self.running_containers(job_id)

    def terminate_job(
        self, job_dir: PurePosixPath, *, grace: float = 10.0, wait_for_start: float = 5.0
    ) -> bool:
        """TERM the job's whole process group, KILL it after ``grace`` seconds; True once it is gone.

        A job being launched at this moment has no job.pid yet: it is waited for, so a launch
        that races with a cancel is still stopped.
        """
        deadline = time.monotonic() + wait_for_start
        pid_text = ""
        while not pid_text.isdigit():
            pid_text = self.read_bytes(job_dir / "job.pid").decode().strip()
            if pid_text.isdigit() or not self.exists(job_dir / "job.sh") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not pid_text.isdigit():
            return True
        pgid = int(pid_text)
        for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not self._group_alive(pgid):
                return True
            self._signal_group(pgid, signum)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self._group_alive(pgid):
                    return True
                time.sleep(0.05)
        return not self._group_alive(pgid)
