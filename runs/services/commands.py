"""What a run sends to its node (its files and command), shown before or after it is sent.

``cosmos_run --dry-run`` and the run page's "Show command" read it here. While a run waits it is
computed by the launch's own builder (cosmos.launch.job_command) from the run's node, runtime and
inputs, writing nothing anywhere; once launched, what was recorded at the launch is shown.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings

from cosmos.launch import JobCommand, job_command
from cosmos.params import ParameterError
from cosmos.profiles import profile_for
from cosmos.standin_archive import archive_name, standin_archive
from inputs.folders import InputError
from nodes.models import GpuNode, Launcher, Transport, new_job_id
from runs.models import Run
from runs.run_inputs import job_item, run_input_files, sim_passed_env, staged_input_path
from runs.services.errors import RunRequestError


@dataclass(frozen=True)
class RunCommand:
    """A run's files and command on its node; ``launched``: as recorded at its launch."""

    node: str
    files: dict[str, str]
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    launched: bool = False
    job_id: str = ""
    preflight_parameters: dict = field(default_factory=dict)


def run_command(*, run: Run) -> RunCommand:
    """What ``run`` sends to its node: recorded once launched, else computed (nothing is written).

    ``run`` may be unsaved (a dry run, see run_unsaved). A RunRequestError says why it cannot be
    computed (its inputs are gone, its node has no image for the model).
    """
    recorded = run.execution_config.get("argv")
    if recorded:
        spec = run.execution_config.get("spec")
        files = {"spec (as recorded)": json.dumps(spec, indent=2, ensure_ascii=False)} if spec else {}
        return RunCommand(
            node=run.node.name,
            files=files,
            argv=list(recorded),
            launched=True,
            job_id=run.execution_config.get("job", ""),
        )
    command, job_id = _computed(run)
    runtime = run.node.runtime_for(run.model_type)
    return RunCommand(
        node=run.node.name,
        files=command.files,
        argv=command.argv,
        env=command.env,
        job_id=job_id,
        preflight_parameters=dict(runtime.preflight_parameters) if runtime else {},
    )


def _computed(run: Run) -> tuple[JobCommand, str]:
    node, profile = run.node, profile_for(run.model_type)
    parameters = run.execution_config["parameters"]
    # A job's id is given when it is claimed: a fresh one stands in for it (the container's name,
    # its torchrun port and the job folder follow it).
    job_id = new_job_id()
    job_dir = PurePosixPath(node.root) / "runs" / job_id
    try:
        inputs = run_input_files(run, profile)
        staged = {
            modality: str(staged_input_path(job_dir, run.id, modality, path))
            for modality, path in inputs.files.items()
        }
        sim = node.launcher == Launcher.SIM
        command = job_command(
            node=node,
            runtime=node.runtime_for(run.model_type),
            profile=profile,
            items=[job_item(run, staged)],
            parameters=parameters,
            devices=list(range(profile.gpus(parameters))),
            job_id=job_id,
            job_dir=job_dir,
            sim_command=planned_sim_command(node) if sim else None,
            sim_env=sim_passed_env() if sim else None,
        )
    except InputError as exc:
        raise RunRequestError(str(exc), field="inputs") from None
    except ParameterError as exc:
        raise RunRequestError(str(exc), field=exc.name) from None
    return command, job_id


def planned_sim_command(node: GpuNode) -> list[str]:
    """How the node will start the stand-in, without copying it there: the transports' sim_command
    copies the archive under this name (nodes/remote), so a dry run names the same file."""
    _, digest = standin_archive()
    if node.transport == Transport.SSH:
        return [node.python or "python3", str(PurePosixPath(node.root) / "bin" / archive_name(digest))]
    return [sys.executable, str(PurePosixPath(settings.COSMOS_DATA_DIR) / "bin" / archive_name(digest))]
