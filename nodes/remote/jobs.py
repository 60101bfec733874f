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

Secrets (the node's Hugging Face token) never appear in job.sh, on a command line or in `ps`: the
launch writes them to job.env, created readable by its owner only (Transport.write_text's mode),
and the script reads that file into its own environment with the shell's `.` builtin (no process
is started with the values) and deletes it before the model starts. The model inherits them; a
container gets them through `docker run -e NAME`, which copies the value from docker's own
environment.
"""

import re
import shlex
from pathlib import PurePosixPath

from nodes.remote.base import RemoteError, Transport

# What job.pid holds when a recovery decided the job never starts.
GIVEN_UP = "given-up"
# The job's secrets, owner-only, deleted by the job script before the model starts.
JOB_ENV = "job.env"
JOB_ENV_MODE = 0o600
# The exit code of a job whose job.env did not arrive (job.log says so).
EXIT_NO_SECRETS = 96
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def job_env_text(variables: dict[str, str]) -> str:
    """job.env: one `export NAME='value'` line each, for the job script's shell to read."""
    for name, value in variables.items():
        if not ENV_NAME.fullmatch(name) or "\0" in value:
            raise ValueError(f"{name!r} cannot go into {JOB_ENV}")  # never the value: it is a secret
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(variables.items()))


def _secrets_lines() -> list[str]:
    missing = f"{JOB_ENV} is missing: the secrets of the node did not arrive"
    return [
        "# The node's secrets: read into this shell's environment, then deleted, before the model starts.",
        f"[ -f {JOB_ENV} ] || {{ echo {shlex.quote(missing)} > job.log; "
        f"echo {EXIT_NO_SECRETS} > job.exit.tmp && mv job.exit.tmp job.exit; exit {EXIT_NO_SECRETS}; }}",
        f". ./{JOB_ENV}",
        f"rm -f {JOB_ENV}",
    ]


def job_script(
    *,
    job_dir: PurePosixPath,
    argv: list[str],
    env: dict[str, str],
    run_id: str,
    secrets_file: bool = False,
) -> str:
    """The job's shell script; with ``secrets_file`` it loads and deletes job.env (written beside it)."""
    quoted_dir = shlex.quote(str(job_dir))
    given_up = f"{{ rm -f {JOB_ENV}; exit 0; }}" if secrets_file else "exit 0"
    lines = [
        "#!/bin/sh",
        f"# Cosmos Workflow run {run_id}. Started detached in its own session; see job.log and job.exit.",
        f"cd {quoted_dir} || exit 97",
        "# A job.pid that exists already means this job was given up before it started: do nothing.",
        f"echo $$ > job.pid.tmp && ln job.pid.tmp job.pid || {given_up}",
        *(_secrets_lines() if secrets_file else []),
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
