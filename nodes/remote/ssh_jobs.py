"""The `ssh` transport's jobs: start them detached, check on them, follow their log.

Following a job's log survives a cut link by reconnecting and resuming from the byte offset it
had reached.
"""

import logging
import random
import shlex
import time
from collections.abc import Iterator
from pathlib import PurePosixPath

from nodes.remote.base import ConnectError, JobState, RemoteError
from nodes.remote.ssh_connect import CHUNK, SSHConnection, _describe, _is_transient, _Stalled

logger = logging.getLogger(__name__)


class SSHJobs(SSHConnection):
    """Starting, checking and following a job in its folder on the node."""

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
