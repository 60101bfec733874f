"""The run page shows a run's own model's settings, its true output size and a live Timing panel (issue 15)."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from inputs.models import InputSet
from runs.consumers import render_event
from runs.live import event_from
from runs.models import Progress, RunStatus
from runs.services import run_create, run_plan
from runs.views.presenters import flat_parameters
from tests.factories import InputSetFactory, RunFactory


@pytest.fixture
def planned(alice, fast_sim, render_dir):
    """A pending run of Alice's of the model asked for, planned as the New run form plans it."""
    InputSetFactory(owner=alice, directory=str(render_dir), modalities=["color", "depth", "seg"])

    def plan(model: str, *, inputs: bool = True, **parameters):
        made = run_plan(
            prompt_text="what is there?",
            model=model,
            input_dir=render_dir if inputs else None,
            parameters=parameters,
            node="local-sim",
            requester=alice,
        )
        return run_create(plan=made, owner=alice)

    return plan


def rows_of(page: str) -> dict[str, str]:
    """The Settings table of a run page: label → value as shown."""
    card = page[page.index("<h2>Settings</h2>") :]
    table = card[: card.index("</table>")]
    return {
        unescape(th): unescape(td) for th, td in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table)
    }


@pytest.mark.parametrize(
    ("model", "inputs", "parameters", "shown", "absent"),
    [
        ("reason1", True, {"temperature": 0.2},
         {"Question": "what is there?", "Temperature": "0.2", "Reasoning": "yes", "FPS": 4},
         {"Vis weight", "Edge weight", "Negative prompt", "Sigma max", "Resolution"}),
        ("reason2", True, {"size": "8B", "reasoning": False},
         {"Size": "8B", "Reasoning": "no", "Temperature": "0.7", "Top-p": "0.8"},
         {"Vis weight", "Negative prompt", "Steps"}),
        ("predict2_5", False, {"inference_type": "text2world"},
         {"Inference type": "text2world", "Model variant": "2B/post-trained", "Steps": 35},
         {"Resolution", "Vis weight", "Sigma max"}),  # "none": its own size, shown as the output's
        ("cosmos3_nano", False, {"model_mode": "text2video", "aspect_ratio": "9,16"},
         {"Mode": "text2video", "Aspect ratio": "9:16", "Frames": 189, "Generate sound": "no"},
         {"Control guidance", "Frames per chunk", "Edge threshold", "Edge weight", "Sigma max"}),
        ("cosmos3_nano", False, {"model_mode": "text2image"},
         {"Mode": "text2image", "Frames": 1, "Steps": 50},
         {"FPS", "Generate sound", "Control guidance"}),
        ("cosmos3_nano", True, {"model_mode": "video2video"},
         {"Mode": "video2video", "Edge weight": "off", "Depth weight": "1", "Seg weight": "1",
          "Control guidance": "1.5"},
         {"Vis weight", "Generate sound"}),
        ("transfer1", True, {},
         {"Vis weight": "off", "Depth weight": "0.5", "Sigma max": "70", "Canny threshold": "medium",
          "Upsample prompt": "no"},
         {"Mode", "Resolution"}),
        ("upscale4k", True, {"control_weight": 0.8},
         {"Control weight": "0.8", "Steps": 10},
         {"Vis weight", "Edge weight", "Sigma max"}),
        ("prompt_upsampler", True, {},
         {"Prompt to enhance": "what is there?", "Offload prompt upsampler": "no"},
         {"Negative prompt", "Seed", "Steps"}),
    ],
)  # fmt: skip
def test_it_shows_only_the_models_own_settings_readably(
    client, alice, planned, model, inputs, parameters, shown, absent
):
    run = planned(model, inputs=inputs, **parameters)
    client.force_login(alice)
    rows = rows_of(client.get(reverse("run_detail", args=[run.id])).content.decode())
    assert {label: rows.get(label) for label in shown} == {
        label: str(value) for label, value in shown.items()
    }
    assert not absent & set(rows), absent & set(rows)
    assert not {value for value in rows.values() if value in ("None", "none", "True", "False", "")}


def test_it_compares_by_the_same_labels(planned):
    first, second = planned("reason1", temperature=0.2), planned("reason1", temperature=0.9)
    assert flat_parameters(first)["Temperature"] == "0.2" and flat_parameters(second)["Temperature"] == "0.9"
    assert "Vis weight" not in flat_parameters(first)


def test_it_shows_the_size_the_output_has_not_the_one_asked_for(client, alice):
    run = RunFactory(
        prompt__owner=alice,
        prompt__model_type="cosmos3_nano",
        status=RunStatus.COMPLETED,
        started_at=timezone.now(),
        completed_at=timezone.now(),
        execution_config={
            "parameters": {"model_mode": "text2video", "resolution": "720", "num_frames": 189, "fps": 24},
            "expected": {"width": 1280, "height": 720, "frames": 189, "fps": 24},
        },
        outputs={"video_info": {"width": 128, "height": 72, "frames": 25, "fps": 24.0}},
    )
    client.force_login(alice)
    rows = rows_of(client.get(reverse("run_detail", args=[run.id])).content.decode())
    assert rows["Output"] == "128×72, 25 frames at 24 fps" and "Expected output" not in rows


def test_it_shows_the_expected_size_only_until_there_is_an_output(client, alice, planned):
    run = planned("cosmos3_nano", inputs=False, model_mode="text2image", resolution="480", aspect_ratio="4,3")
    client.force_login(alice)
    rows = rows_of(client.get(reverse("run_detail", args=[run.id])).content.decode())
    assert rows["Expected output"] == "736×544 image" and "Output" not in rows


# --- the Timing panel ---------------------------------------------------------------------------


def local(moment) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i:s")


def timing_rows(html: str, run) -> dict[str, str]:
    panel = html[html.index(f'id="run-timing-{run.id}"') :]
    panel = panel[: panel.index("</table>")]
    return {th: td for th, td in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", panel)}


def test_it_says_a_queued_run_is_waiting(client, alice):
    run = RunFactory(prompt__owner=alice, created_at=timezone.now() - timedelta(seconds=40))
    client.force_login(alice)
    rows = timing_rows(client.get(reverse("run_detail", args=[run.id])).content.decode(), run)
    assert rows["Queued"] == local(run.created_at) and rows["Started"] == "waiting for a GPU"
    assert rows["Finished"] == "—" and rows["Queue wait"].endswith("so far") and "Run time" not in rows


def test_it_shows_a_finished_runs_times_and_durations(client, alice):
    created = timezone.now() - timedelta(minutes=10)
    run = RunFactory(
        prompt__owner=alice,
        status=RunStatus.COMPLETED,
        created_at=created,
        started_at=created + timedelta(seconds=30),
        completed_at=created + timedelta(seconds=230),
    )
    client.force_login(alice)
    rows = timing_rows(client.get(reverse("run_detail", args=[run.id])).content.decode(), run)
    assert rows == {
        "Queued": local(created),
        "Started": local(run.started_at),
        "Finished": local(run.completed_at),
        "Queue wait": "30 s",
        "Run time": "3 min 20 s",
    }


def test_it_sends_the_timing_with_each_live_event(alice):
    created = timezone.now() - timedelta(minutes=5)
    run = RunFactory(
        prompt__owner=alice,
        status=RunStatus.RUNNING,
        created_at=created,
        started_at=created + timedelta(seconds=65),
    )
    progress = Progress.objects.create(run=run, stage="generating", percentage=40.0, message="step 14/35")
    progress.timestamp = run.started_at + timedelta(seconds=100)
    rows = timing_rows(render_event(event_from(progress)), run)
    assert rows["Started"] == local(run.started_at) and rows["Finished"] == "running"
    assert rows["Queue wait"] == "1 min 05 s" and rows["Run time"] == "1 min 40 s so far"


def test_it_polls_the_timing_with_the_progress_on_the_run_page_only(client, alice):
    run = RunFactory(prompt__owner=alice, status=RunStatus.RUNNING, started_at=timezone.now())
    client.force_login(alice)
    polled = client.get(reverse("run_progress", args=[run.id]), {"timing": "1"}).content.decode()
    assert f'id="run-timing-{run.id}" class="table compact timing" hx-swap-oob="true"' in polled
    assert "run-timing-" not in client.get(reverse("run_progress", args=[run.id])).content.decode()
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert f"{reverse('run_progress', args=[run.id])}?timing=1" in page


# --- the Inputs panel ----------------------------------------------------------------------------

VIDEO = {"frames": 121, "fps": 24.0, "width": 640, "height": 352}


def inputs_panel(page: str) -> str:
    """The run page's Inputs card as text."""
    card = page[page.index("<h2>Inputs</h2>") + len("<h2>Inputs</h2>") : page.index("<h2>Timing</h2>")]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", card))).strip()


@pytest.mark.parametrize(
    ("model", "info", "parameters", "shown"),
    [
        # A question reads the video alone: the control videos beside it are said to be unread.
        ("reason2", {"color": VIDEO, "depth": VIDEO, "seg": VIDEO}, {"size": "2B"},
         "color 640×352, 121 frames Also in its folder, not read by this run: depth, seg."),
        ("transfer1", {"color": VIDEO, "depth": VIDEO, "seg": VIDEO}, {"controls": {"depth": 0.5, "seg": 0.5}},
         "color 640×352, 121 frames depth 640×352, 121 frames seg 640×352, 121 frames"),
        # A still is its size, not "1 frames".
        ("cosmos3_nano", {"image": {"frames": 1, "fps": 0.0, "width": 640, "height": 352}},
         {"model_mode": "image2video", "controls": {}}, "image 640×352"),
        ("cosmos3_nano", {}, {"model_mode": "text2video", "controls": {}}, "None: made from the prompt alone."),
        ("cosmos3_nano", {"color": VIDEO}, {"model_mode": "text2video", "controls": {}},
         "None: made from the prompt alone. Also in its folder, not read by this run: color."),
    ],
)  # fmt: skip
def test_it_lists_the_inputs_the_run_read(client, alice, model, info, parameters, shown):
    run = RunFactory(
        prompt__owner=alice,
        prompt__model_type=model,
        prompt__inputs={"dir": "/data/in", "info": info} if info else {},
        execution_config={"parameters": parameters},
    )
    client.force_login(alice)
    assert inputs_panel(client.get(reverse("run_detail", args=[run.id])).content.decode()) == shown


def test_it_names_the_inputs_as_they_are_listed_never_by_their_path(client, alice, planned, render_dir):
    run = planned("transfer1")
    text_only = planned("cosmos3_nano", inputs=False, model_mode="text2video")
    named = InputSet.objects.get(directory=str(render_dir))  # the planned fixture's
    named.name = "harbour-at-dawn"
    named.save()
    client.force_login(alice)
    rows = rows_of(client.get(reverse("run_detail", args=[run.id])).content.decode())
    assert rows["Inputs"] == "harbour-at-dawn" == named.name
    assert str(render_dir) not in client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert "Inputs" not in flat_parameters(text_only)
    named.delete()  # a folder no input set of its owner's names: by its own name
    assert flat_parameters(run)["Inputs"] == render_dir.name
