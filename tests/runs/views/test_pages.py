import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Progress, RunStatus
from runs.templatetags.cosmos import filesize
from tests.factories import RunFactory

PAGES = ["dashboard", "run_list", "gallery", "compare", "run_new", "prompt_list", "sweep_list"]


@pytest.mark.parametrize("name", PAGES)
def test_it_sends_anonymous_visitors_to_log_in(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
def test_it_renders_every_page_for_a_user(client, alice, fast_sim, name):
    client.force_login(alice)
    assert client.get(reverse(name)).status_code == 200


def test_it_shows_a_run_to_its_owner_and_hides_it_from_strangers(client, alice, bob, finished_run):
    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[finished_run.id])).content.decode()
    assert finished_run.prompt.prompt_text in page
    assert reverse("run_file", args=[finished_run.id, "output.mp4"]) in page
    client.force_login(bob)
    for name in ("run_detail", "run_progress", "run_log"):
        assert client.get(reverse(name, args=[finished_run.id])).status_code == 404
    assert client.get(reverse("run_file", args=[finished_run.id, "output.mp4"])).status_code == 404


def test_it_shows_staff_every_run(client, staff, finished_run):
    client.force_login(staff)
    assert client.get(reverse("run_detail", args=[finished_run.id])).status_code == 200
    assert finished_run.id in client.get(reverse("run_list")).content.decode()


def test_it_lists_only_the_users_runs(client, alice, bob, db):
    mine, theirs = RunFactory(owner=alice), RunFactory(owner=bob)
    client.force_login(alice)
    page = client.get(reverse("run_list")).content.decode()
    assert mine.id in page and theirs.id not in page


def test_it_lists_each_runs_model(client, alice, db):
    reason = RunFactory(owner=alice, prompt__model_type="reason2")
    nano = RunFactory(owner=alice, prompt__model_type="cosmos3_nano")
    client.force_login(alice)
    page = client.get(reverse("run_list")).content.decode()
    rows = {
        run_id: row
        for run_id, row in re.findall(r'value="(rs_\w+)" aria-label="compare.*?(<td>.*?)</tr>', page, re.S)
    }
    assert "<th>Model</th>" in page
    assert "<td>Cosmos-Reason2</td>" in rows[reason.id] and "<td>Cosmos3-Nano</td>" in rows[nano.id]


def test_it_filters_runs_and_renders_only_the_results_for_htmx(client, alice, db):
    done = RunFactory(
        owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now(), starred=True, rating=4
    )
    waiting = RunFactory(owner=alice)
    client.force_login(alice)
    response = client.get(
        reverse("run_list"),
        {"status": "completed", "starred": "1", "rating": "4"},
        headers={"HX-Request": "true"},
    )
    content = response.content.decode()
    assert done.id in content and waiting.id not in content
    assert "<html" not in content  # the partial alone


def test_it_shows_the_progress_of_a_running_run_with_an_eta(client, alice, db, fast_sim):
    run = RunFactory(owner=alice, node=fast_sim, status=RunStatus.RUNNING, started_at=timezone.now())
    Progress.objects.create(
        run=run, stage="generating", percentage=42.0, message="Clip 1/1: diffusion, 35 steps", eta_seconds=200
    )
    client.force_login(alice)
    block = client.get(reverse("run_progress", args=[run.id])).content.decode()
    assert 'data-percentage="42.0"' in block and "Clip 1/1: diffusion" in block
    assert "about 3 min 20 s left" in block  # as its recorder estimated it


def test_it_stops_polling_once_a_run_has_ended(client, alice, finished_run):
    client.force_login(alice)
    response = client.get(reverse("run_progress", args=[finished_run.id]))
    assert response.status_code == 286  # htmx: stop polling
    assert b'data-status="completed"' in response.content


def completed_runs(owner, count: int, **fields) -> list:
    now = timezone.now()
    return [
        RunFactory(
            prompt__owner=owner,
            status=RunStatus.COMPLETED,
            completed_at=now - timezone.timedelta(minutes=index),
            outputs={"video": "/x/output.mp4", "thumbnail": "/x/thumbnail.jpg"},
            **fields,
        )
        for index in range(count)
    ]


def test_it_shows_outputs_in_the_gallery_starred_first(client, alice, finished_run):
    newer = completed_runs(alice, 2)
    finished_run.set_starred(True)
    client.force_login(alice)
    page = client.get(reverse("gallery")).content.decode()
    tiles = [page.index(reverse("run_detail", args=[run.id])) for run in (finished_run, *newer)]
    assert tiles == sorted(tiles), "starred first, then newest first"


def test_it_loads_more_gallery_tiles_when_the_last_one_shows(client, alice):
    from runs.views.pages import GALLERY_PER_PAGE

    runs = completed_runs(alice, GALLERY_PER_PAGE + 2)
    client.force_login(alice)
    first = client.get(reverse("gallery"), {"model": "transfer1"}).content.decode()
    assert reverse("run_detail", args=[runs[GALLERY_PER_PAGE - 1].id]) in first
    assert reverse("run_detail", args=[runs[GALLERY_PER_PAGE].id]) not in first
    assert 'hx-get="?model=transfer1&amp;page=2&amp;part=tiles"' in first

    more = client.get(
        reverse("gallery"),
        {"model": "transfer1", "page": "2", "part": "tiles"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "<html" not in more
    assert [run.id for run in runs[GALLERY_PER_PAGE:]] == re.findall(r"/runs/(rs_\w+)/\"", more)
    assert "hx-get" not in more  # the last page: nothing more to load


@pytest.mark.slow
def test_it_compares_runs_showing_only_what_differs(client, alice, fast_sim, render_dir):
    from runs.services import run_create, run_execute, run_plan

    runs = [
        run_execute(
            run=run_create(
                plan=run_plan(prompt_text="a harbour", input_dir=render_dir, parameters={"seed": seed}),
                owner=alice,
            )
        )
        for seed in (1, 2)
    ]
    client.force_login(alice)
    page = client.get(reverse("compare"), {"runs": f"{runs[0].id},{runs[1].id}"}).content.decode()
    assert page.count("<video") == 2
    assert "<th>Seed</th>" in page
    assert "<th>Guidance</th>" not in page  # equal in both: not shown


def test_it_shows_the_dashboard_with_nodes_and_the_queue(client, alice, staff, db, fast_sim):
    queued = RunFactory(owner=alice, node=fast_sim)
    client.force_login(alice)
    page = client.get(reverse("dashboard")).content.decode()
    assert queued.id in page and "local-sim" in page
    assert "Pause the queue" not in page  # staff only
    client.force_login(staff)
    assert "Pause the queue" in client.get(reverse("dashboard")).content.decode()


def test_it_shows_a_prompt_with_its_runs(client, alice, bob, finished_run):
    client.force_login(alice)
    page = client.get(reverse("prompt_detail", args=[finished_run.prompt_id])).content.decode()
    assert finished_run.id in page
    client.force_login(bob)
    assert client.get(reverse("prompt_detail", args=[finished_run.prompt_id])).status_code == 404


HOSTILE_QUERIES = [
    ("run_list", "rating=²"),
    ("run_list", "rating=99999999999999999999999"),
    ("run_list", "page=²"),
    ("run_list", "page=12345678901234567890123"),
    ("gallery", "page=²"),
    ("gallery", "page=٣"),
    ("gallery", "page=12345678901234567890123"),
    ("gallery", "rating=²"),
    ("prompt_list", "page=²"),
    ("prompt_list", "page=12345678901234567890123"),
    ("compare", "runs=%ED%A0%80"),
]


@pytest.mark.parametrize(("name", "query"), HOSTILE_QUERIES)
def test_it_shows_the_default_view_for_numbers_that_are_not_numbers(client, alice, fast_sim, name, query):
    client.force_login(alice)
    RunFactory(owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now(), rating=3)
    assert client.get(reverse(name) + "?" + query).status_code == 200
    assert client.get(reverse(name) + "?" + query, headers={"HX-Request": "true"}).status_code == 200


@pytest.mark.parametrize("name", ["dashboard", "run_list", "gallery", "prompt_list", "compare"])
def test_it_refuses_a_nul_character_in_the_address(client, alice, fast_sim, name):
    client.force_login(alice)
    for query in ("node=%00", "q=a%00b", "tag=%00", "%00=1"):
        assert client.get(reverse(name) + "?" + query).status_code == 400


def test_it_refreshes_the_queue_whatever_part_an_htmx_request_names(client, alice, fast_sim):
    client.force_login(alice)
    for part in ("queue", "nonexistent", "../base"):
        response = client.get(reverse("dashboard") + f"?part={part}", headers={"HX-Request": "true"})
        assert response.status_code == 200 and b"<html" not in response.content


def transfer_run(owner):
    """A completed transfer run with its edge and depth control videos (the outputs JSON, and an
    empty output.mp4 where it says: a run whose file is gone shows "Output not found")."""
    from django.conf import settings

    (run,) = completed_runs(owner, 1)
    folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
    folder.mkdir(parents=True)
    (folder / "output.mp4").touch()
    run.outputs = {
        **run.outputs,
        "dir": str(folder),
        "video": str(folder / "output.mp4"),
        "video_info": {"width": 1280, "height": 720, "frames": 121, "fps": 24.0},
        "controls": {"depth": "/x/output_control_depth.mp4", "edge": "/x/output_control_edge.mp4"},
    }
    run.save(update_fields=["outputs"])
    return run


def test_it_shows_an_image_run_as_its_image(client, alice, bob, image_run):
    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[image_run.id])).content.decode()
    image = reverse("run_file", args=[image_run.id, "output.jpg"])
    assert f'<img id="output-image" src="{image}"' in page
    assert "192×128 JPEG image" in page
    assert "<video" not in page
    client.force_login(bob)
    assert client.get(reverse("run_detail", args=[image_run.id])).status_code == 404


def test_it_shows_the_control_videos_beside_a_transfer_runs_video(client, alice, bob):
    run = transfer_run(alice)
    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert 'data-lead controls preload="metadata"' in page
    assert reverse("run_file", args=[run.id, "output.mp4"]) in page
    followers = re.findall(r'<video data-follows data-hint="(\w+)"[^>]* src="([^"]+)"', page)
    assert followers == [
        ("depth", reverse("run_file", args=[run.id, "output_control_depth.mp4"])),
        ("edge", reverse("run_file", args=[run.id, "output_control_edge.mp4"])),
    ]
    assert ">depth control</a>" in page and ">edge control</a>" in page
    client.force_login(bob)
    assert client.get(reverse("run_detail", args=[run.id])).status_code == 404


def test_it_previews_an_image_run_in_the_gallery_by_its_image(client, alice, bob, image_run):
    (video_run,) = completed_runs(alice, 1)
    client.force_login(alice)
    page = client.get(reverse("gallery")).content.decode()
    assert f'data-preview-image="{reverse("run_file", args=[image_run.id, "output.jpg"])}"' in page
    assert f'src="{reverse("run_file", args=[image_run.id, "thumbnail.jpg"])}"' in page
    assert f'data-preview="{reverse("run_file", args=[video_run.id, "output.mp4"])}"' in page
    client.force_login(bob)
    assert image_run.id not in client.get(reverse("gallery")).content.decode()


def test_it_compares_an_image_run_by_its_image_beside_videos(client, alice, bob, image_run):
    run = transfer_run(alice)
    client.force_login(alice)
    page = client.get(reverse("compare"), {"runs": f"{image_run.id},{run.id}"}).content.decode()
    assert f'<img src="{reverse("run_file", args=[image_run.id, "output.jpg"])}"' in page
    assert page.count("<video") == 1 and "data-compare-play" in page
    client.force_login(bob)
    page = client.get(reverse("compare"), {"runs": f"{image_run.id},{run.id}"}).content.decode()
    assert "<img src=" not in page and "<video" not in page


def test_it_leaves_out_the_play_controls_when_only_images_are_compared(client, alice, image_run):
    other = RunFactory(
        prompt__owner=alice,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        outputs=image_run.outputs,
    )
    client.force_login(alice)
    page = client.get(reverse("compare"), {"runs": f"{image_run.id},{other.id}"}).content.decode()
    assert page.count("<img src=") == 2 and "<video" not in page
    assert "data-compare-play" not in page


def test_it_shows_an_image_runs_thumbnail_on_the_dashboard(client, alice, image_run):
    client.force_login(alice)
    page = client.get(reverse("dashboard")).content.decode()
    assert reverse("run_file", args=[image_run.id, "thumbnail.jpg"]) in page


def test_it_shows_a_text_results_opening_words_on_the_dashboard_not_an_empty_tile(client, alice, db):
    answer = RunFactory(
        prompt__owner=alice,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        outputs={"answer": "Two people cross at the light. " * 10, "dir": "/x"},
    )
    enhanced = RunFactory(
        prompt__owner=alice,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        outputs={
            "upsampled_prompt": "A city street at dusk, rain on the asphalt.",
            "prompt_id": "ps_x",
            "dir": "/x",
        },
    )
    client.force_login(alice)
    page = client.get(reverse("dashboard")).content.decode()
    tiles = {
        run_id: tile
        for run_id, tile in re.findall(r'<a class="tile" href="/runs/(\w+)/">(.*?)</a>', page, re.S)
    }
    assert (
        '<p class="tile-text">Two people cross at the light.' in tiles[answer.id] and "…" in tiles[answer.id]
    )
    assert '<p class="tile-text">A city street at dusk, rain on the asphalt.</p>' in tiles[enhanced.id]


def test_it_offers_rewording_not_retrying_first_when_the_guardrail_blocked_a_run(client, alice, db):
    ended = {"owner": alice, "status": RunStatus.FAILED, "completed_at": timezone.now()}
    blocked = RunFactory(**ended, failure_kind="blocked_by_guardrail", error_message="Guardrail blocked it")
    crashed = RunFactory(**ended, failure_kind="crashed")
    client.force_login(alice)
    html = client.get(reverse("run_detail", args=[blocked.id])).content.decode()
    reword = f'<a class="button primary" href="{reverse("run_new")}?like={blocked.id}">Reword the prompt</a>'
    assert reword in html
    assert '<button class="primary">Retry' not in html and "<button>Retry unchanged</button>" in html
    html = client.get(reverse("run_detail", args=[crashed.id])).content.decode()
    assert '<button class="primary">Retry</button>' in html and "Reword the prompt" not in html


def test_it_says_so_when_curation_deleted_a_runs_output(client, alice, image_run):
    from runs.services.curation import run_delete_outputs

    freed = run_delete_outputs(run=image_run)
    client.force_login(alice)
    html = client.get(reverse("run_detail", args=[image_run.id])).content.decode()
    assert "Output deleted" in html and "Its files were deleted" in html
    assert f"({filesize(freed)})" in html
    assert 'id="output-image"' not in html and "Compare with" not in html  # nothing left to compare


def test_it_says_a_runs_output_file_is_not_here_without_calling_it_deleted(client, alice, image_run):
    # Removed by hand, or saved by a worker on a machine whose disk this server does not see:
    # nothing recorded a deletion, so the page does not claim one.
    Path(image_run.output_file).unlink()
    client.force_login(alice)
    html = client.get(reverse("run_detail", args=[image_run.id])).content.decode()
    assert "Output not found" in html and "not on this server" in html
    assert "Output deleted" not in html and "no longer on" not in html
    assert 'id="output-image"' not in html  # no broken player


def test_it_shows_the_output_while_its_file_is_there(client, alice, image_run):
    client.force_login(alice)
    html = client.get(reverse("run_detail", args=[image_run.id])).content.decode()
    assert 'id="output-image"' in html and "Output deleted" not in html


def test_it_shows_settings_as_yes_no_and_readable_numbers(client, alice, db):
    run = RunFactory(
        owner=alice, execution_config={"parameters": {"use_distilled": False, "seed": 4294967295}}
    )
    client.force_login(alice)
    html = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert "<th>use distilled</th><td>no</td>" in html.replace("Use distilled", "use distilled")
    assert "4,294,967,295" in html and ">False<" not in html


def test_it_counts_runs_in_words_that_agree_with_the_number(client, alice, db):
    client.force_login(alice)
    RunFactory(owner=alice)
    assert "· 1 run</span>" in client.get(reverse("run_list")).content.decode()
    RunFactory(owner=alice)
    assert "· 2 runs</span>" in client.get(reverse("run_list")).content.decode()


def test_it_gives_every_page_the_sites_icon(client, alice, db):
    client.force_login(alice)
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert icon in client.get(reverse("dashboard")).content.decode()
    client.logout()
    assert icon in client.get(reverse("login")).content.decode()
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert (Path(__file__).resolve().parents[3] / "static" / "favicon.svg").read_text().startswith("<svg")
