"""Cosmos 3 through the JSON API: each mode created by a POST, run on the stand-in, read back by its owner.

The run is executed the way a worker does (run_execute after the API queued it), so what the API
accepted is what the model ran; sizes follow reference/cosmos3.md §3.3 at full stand-in resolution.
"""

import json

import av
import pytest
from django.urls import reverse

from runs.models import ApiToken, Run, RunStatus
from runs.services import run_execute
from tests.videos import write_test_image, write_test_video


@pytest.fixture
def renders(settings, tmp_path):
    """A folder every user may name as inputs (COSMOS_INPUT_ROOTS), with a video, its depth and an image."""
    root = tmp_path / "renders"
    write_test_video(root / "street" / "color.mp4", frames=13, width=192, height=108, fps=30)
    write_test_video(root / "street" / "depth.mp4", frames=13, width=192, height=108, fps=30, shade=90)
    write_test_image(root / "still" / "image.jpg", width=108, height=192)
    settings.COSMOS_INPUT_ROOTS = [root.resolve()]
    return root


@pytest.fixture
def full_size(fast_sim, monkeypatch):
    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "1")
    return fast_sim


def post_run(client, key: str, body: dict, django_capture_on_commit_callbacks, no_workers) -> Run:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api:runs"),
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 201, response.content
    return Run.objects.get(pk=response.json()["run_id"])


def detail(client, key: str, run: Run) -> dict:
    response = client.get(reverse("api:run", args=[run.id]), headers={"Authorization": f"Bearer {key}"})
    return response.json() if response.status_code == 200 else {"status_code": response.status_code}


def size_of(path: str) -> tuple[int, int, int]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, sum(1 for _ in container.decode(stream))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("inputs", "parameters", "mode", "expected"),
    [
        (None, {"model_mode": "text2image"}, "text2image", ("image", 960, 960, 1)),
        (None, {"resolution": "256", "num_frames": 9}, "text2video", ("video", 320, 192, 9)),
        ("still", {"resolution": "256", "num_frames": 9}, "image2video", ("video", 192, 320, 9)),
        (
            "street",
            {"resolution": "256", "weights": {"edge": 0.5, "depth": 0.8}},
            "video2video",
            ("video", 320, 192, 13),
        ),
    ],
    ids=["text2image", "text2video", "image2video", "video2video"],
)
def test_it_runs_each_mode_from_a_post(
    client, alice, bob, full_size, renders, django_capture_on_commit_callbacks, no_workers,
    inputs, parameters, mode, expected,
):  # fmt: skip
    key = ApiToken.issue(user=alice, name="scripts")[1]
    body = {"prompt": "a tram crossing a bridge", "model_type": "cosmos3_nano", "parameters": parameters}
    if inputs:
        body["inputs"] = str(renders / inputs)
    run = post_run(client, key, body, django_capture_on_commit_callbacks, no_workers)
    assert run.execution_config["parameters"]["model_mode"] == mode
    run = run_execute(run=run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    shown = detail(client, key, run)
    kind, width, height, frames = expected
    assert shown["output_path"] == shown["outputs"][kind]
    assert size_of(shown["output_path"]) == (width, height, frames)
    assert detail(client, ApiToken.issue(user=bob)[1], run) == {"status_code": 404}  # a stranger sees nothing


def test_it_refuses_a_control_without_its_video_naming_the_weight(client, alice, fast_sim, renders):
    key = ApiToken.issue(user=alice)[1]
    body = {"prompt": "x", "inputs": str(renders / "street"), "weights": {"wsm": 0.5}}
    response = client.post(
        reverse("api:runs"),
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "weight_wsm" and "wsm.mp4" in response.json()["error"]
    assert not Run.objects.exists()
