"""The shell script that runs one Cosmos job detached on a node.

It records its own process-group id, sends all output to job.log and writes the exit code to
job.exit only when the model has ended, via a rename so a reader never sees half a number. A
job whose job.exit is missing while its process group is gone was killed: it is `lost`.
"""

import shlex
from pathlib import PurePosixPath


def job_script(*, job_dir: PurePosixPath, argv: list[str], env: dict[str, str], run_id: str) -> str:
    quoted_dir = shlex.quote(str(job_dir))
    lines = [
        "#!/bin/sh",
        f"# Cosmos Workflow run {run_id}. Started detached in its own session; see job.log and job.exit.",
        f"cd {quoted_dir} || exit 97",
        "echo $$ > job.pid.tmp && mv job.pid.tmp job.pid",
        *(f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())),
        f"{shlex.join(argv)} > job.log 2>&1 < /dev/null",
        "echo $? > job.exit.tmp && mv job.exit.tmp job.exit",
        "",
    ]
    return "\n".join(lines)
