"""The local files a run stages on its node: its input folder's videos, or a run's source video."""

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from cosmos.media import InvalidVideo, probe_input
from cosmos.profiles import JobItem, ModelProfile
from inputs.folders import InputError, input_set_from_json
from runs.models import Run


@dataclass(frozen=True)
class RunInputs:
    files: dict[str, Path]  # modality → local file to stage on the node
    frames: int  # frames the model will read (0: no video)
    sources: dict[str, Path]  # modality → the file it was given (files may hold a form derived from it)


def run_input_files(run: Run, profile: ModelProfile) -> RunInputs:
    """The local files a run's model reads: one chosen video (a run's output), else its input folder."""
    parameters = run.execution_config["parameters"]
    source = run.execution_config.get("source_video")
    if source:
        try:
            info = probe_input(Path(source))
        except InvalidVideo as exc:
            raise InputError(str(exc)) from None
        files, frames = {"color": Path(source)}, info.frames
    elif not profile.needs_video and not run.prompt.inputs.get("dir"):
        files, frames = {}, 0
    else:
        input_set = input_set_from_json(run.prompt.inputs)
        needed = profile.needed_inputs(parameters, input_set.modalities) & input_set.modalities
        files = {modality: input_set.videos[modality] for modality in sorted(needed)}
        frames = input_set.frames(needed) if needed else 0
    cache = Path(settings.COSMOS_DATA_DIR) / "cache"
    prepared = profile.prepare_inputs(parameters, files, cache_dir=cache)
    return RunInputs(files=prepared, frames=frames, sources=files)


def staged_input_path(job_dir: PurePosixPath, run_id: str, modality: str, local: Path) -> PurePosixPath:
    """Where a run's input is linked in its job folder (to the node's cached copy): what its spec names."""
    suffix = local.suffix.lower() or ".mp4"
    return job_dir / "inputs" / run_id / f"{modality}{suffix}"


def job_item(run: Run, staged: dict[str, str]) -> JobItem:
    """A run's share of a job: its text, staged inputs and own parameters."""
    return JobItem(
        run_id=run.id,
        prompt=run.prompt.prompt_text,
        negative_prompt=run.prompt.negative_prompt,
        staged=staged,
        parameters=run.execution_config["parameters"],
    )


def sim_passed_env() -> dict[str, str]:
    """Failure injection and output scale for the stand-in: they travel with the job."""
    return {name: value for name, value in os.environ.items() if name.startswith("COSMOS_SIM_")}
