"""Completed runs with small real output files, for dataset export tests."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

from runs.models import Run, RunStatus
from runs.outputs import outputs_json
from tests.factories import PromptFactory, RunFactory
from tests.videos import write_test_image, write_test_video

# Every run of a test completes at a fixed moment (one minute apart): exports of the same runs
# then carry the same times in their tar headers, whenever the test runs.
COMPLETED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def exportable_run(owner, *, index: int = 0, image: bool = False, controls: bool = False, **fields) -> Run:
    """A completed run of ``owner`` whose output (a 3-frame 32×18 video, or an image) is on disk; with
    ``controls`` also an edge control video in its folder and a color input video of its prompt."""
    prompt_fields = {
        key[len("prompt__") :]: fields.pop(key) for key in list(fields) if key.startswith("prompt__")
    }
    prompt = fields.pop("prompt", None) or PromptFactory(owner=owner, **prompt_fields)
    moment = COMPLETED + timedelta(minutes=index)
    run = RunFactory(
        prompt=prompt,
        owner=owner,
        status=RunStatus.COMPLETED,
        created_at=moment - timedelta(minutes=1),
        started_at=moment - timedelta(seconds=30),
        completed_at=moment,
        execution_config={"parameters": {"seed": index, "guidance": 7}, "node": "local-sim"},
        **fields,
    )
    folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
    names = []
    if image:
        write_test_image(folder / "output.jpg", width=32, height=24, shade=index * 20 % 256)
        names.append("output.jpg")
    else:
        write_test_video(folder / "output.mp4", frames=3, width=32, height=18, shade=index * 20 % 256)
        names.append("output.mp4")
    if controls:
        write_test_video(folder / "output_control_edge.mp4", frames=3, width=32, height=18, shade=200)
        names.append("output_control_edge.mp4")
        color = write_test_video(
            Path(settings.COSMOS_DATA_DIR) / "inputs" / run.id / "color.mp4", frames=3, width=32, height=18
        )
        prompt.inputs = {"dir": str(color.parent), "videos": {"color": str(color)}}
        prompt.save(update_fields=["inputs"])
    run.outputs = outputs_json(folder, names)
    run.save(update_fields=["outputs"])
    return run
