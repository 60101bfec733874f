"""The shell script that runs one Cosmos job detached on a node, and who decides whether it starts.

The script records its own process-group id, sends all output to job.log and writes the exit
code to job.exit only when the model has ended, via a rename so a reader never sees half a
number. A job whose job.exit is missing while its process group is gone was killed: it is `lost`.

job.pid also decides whether the job runs at all. The script creates it with a hard link, which
makes the file appear whole or not at all and never over an existing one; a recovery that found
the launching worker dead links a tombstone there instead (settle_start). Exactly one of the two
wins, whatever the timing: a job that lost never runs, so its runs can safely go back to the
queue, and a job that won is running and is adopted. A launch is never repeated and never both
given up and running.
"""

import shlex
from pathlib import PurePosixPath

from nodes.remote.base import RemoteError, Transport

# What job.pid holds when a recovery decided the job never starts.
GIVEN_UP = "given-up"


def job_script(*, job_dir: PurePosixPath, argv: list[str], env: dict[str, str], run_id: str) -> str:
    quoted_dir = shlex.quote(str(job_dir))
    lines = [
        "#!/bin/sh",
        f"# Cosmos Workflow run {run_id}. Started detached in its own session; see job.log and job.exit.",
        f"cd {quoted_dir} || exit 97",
        "# A job.pid that exists already means this job was given up before it started: do nothing.",
        "echo $$ > job.pid.tmp && ln job.pid.tmp job.pid || exit 0",
        *(f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())),
        f"{shlex.join(argv)} > job.log 2>&1 < /dev/null",
        "echo $? > job.exit.tmp && mv job.exit.tmp job.exit",
        "",
    ]
    return "\n".join(lines)


def settle_start(transport: Transport, job_dir: PurePosixPath) -> int | None:
    """The process group of the job in ``job_dir`` if it started; None if it has not and now never will.

    Safe at any moment, even while the job script is being started by a worker that is only
    slow: whichever of the two links job.pid first decides. RemoteError when the node cannot
    tell (unreachable, or job.pid holds something else).
    """
    pid_path, tombstone = job_dir / "job.pid", job_dir / f"job.pid.{GIVEN_UP}"
    transport.write_text(tombstone, f"{GIVEN_UP}\n")
    transport.run_command(["ln", "--", str(tombstone), str(pid_path)])  # fails if the job linked first
    text = transport.read_bytes(pid_path).decode(errors="replace").strip()
    if text.isdigit():
        return int(text)
    if text == GIVEN_UP:
        return None
    raise RemoteError(f"cannot tell whether the job in {job_dir} started: job.pid holds {text[:40]!r}")
