"""The sweep pages: sweep from a run (preview, then queue), the list, the grid and cancelling, each
for its owner only."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunStatus, Sweep
from runs.services import run_create, run_plan
from runs.services.sweeps import sweep_create, sweep_plan

VIDEO = {"video": "/x/output.mp4", "thumbnail": "/x/thumbnail.jpg", "dir": "/x"}
SEEDS_BY_EDGE = {"axis_1": "seed", "values_1": "1, 2, 3", "axis_2": "edge", "values_2": "0.25,0.5,1"}


@pytest.fixture
def run(alice, render_dir, no_workers):
    """A run of Alice's (queued, never started): the base of her sweeps."""
    return run_create(plan=run_plan(prompt_text="a foggy harbour at dawn", input_dir=render_dir), owner=alice)


@pytest.fixture
def sweep(run, alice, no_workers):
    """Alice's 3 × 3 sweep of seeds and edge weights from ``run``; the seed-1 row completed."""
    planned = sweep_plan(
        owner=alice,
        from_run=run,
        axes=[{"name": "seed", "values": [1, 2, 3]}, {"name": "edge", "values": [0.25, 0.5, 1.0]}],
    )
    assert planned.ok, planned.errors
    made = sweep_create(plan=planned, owner=alice, name="harbour grid")
    made.runs.filter(sweep_cell__seed=1).update(
        status=RunStatus.COMPLETED, completed_at=timezone.now(), outputs=VIDEO
    )
    return made


def post(client, run, **data):
    return client.post(reverse("sweep_new", args=[run.id]), {"name": "", **data})


def preview_then_queue(client, run, **data):
    """The preview posted, then its "Queue N runs" with the confirmation the preview gave."""
    page = post(client, run, action="preview", **data).content.decode()
    confirm = re.search(r'name="confirm" value="([^"]+)"', page).group(1)
    return post(client, run, action="queue", confirm=confirm, **data)


def cells_of(page: str) -> list[str]:
    return re.findall(r'id="cell-(rs_\w+)"', page)


def test_it_offers_a_sweep_from_the_run_page(client, alice, run):
    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert f'href="{reverse("sweep_new", args=[run.id])}"' in page


def test_it_prefills_the_runs_seed_and_offers_its_models_axes(client, alice, run):
    client.force_login(alice)
    page = client.get(reverse("sweep_new", args=[run.id])).content.decode()
    seed = run.execution_config["parameters"]["seed"]
    assert re.search(r'<option value="seed" selected>', page)
    assert f'id="id_values_1">\n{seed}</textarea>' in page
    for axis in ("prompt", "inputs", "edge", "num_steps"):
        assert f'<option value="{axis}"' in page
    assert "a foggy harbour at dawn" in page  # the base settings


def test_it_gives_a_stranger_the_same_404_as_a_missing_run(client, bob, run):
    client.force_login(bob)
    assert client.get(reverse("sweep_new", args=[run.id])).status_code == 404
    assert post(client, run, action="queue", confirm="9", **SEEDS_BY_EDGE).status_code == 404
    assert client.get(reverse("sweep_new", args=["rs_missing"])).status_code == 404
    assert not Sweep.objects.exists()


def test_it_lets_staff_sweep_anyones_run(client, staff, run):
    client.force_login(staff)
    assert client.get(reverse("sweep_new", args=[run.id])).status_code == 200


def test_it_previews_the_grid_without_queueing_anything(client, alice, run, no_workers):
    client.force_login(alice)
    response = post(client, run, action="preview", **SEEDS_BY_EDGE)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Queue 9 runs" in page and 'name="confirm" value="9-' in page
    assert page.count("<tr><td>") == 9 and "Nothing is queued until you confirm" in page
    assert not Sweep.objects.exists() and Run.objects.count() == 1
    no_workers.schedule.assert_not_called()


def test_it_renders_only_the_form_for_htmx(client, alice, run):
    client.force_login(alice)
    page = client.post(
        reverse("sweep_new", args=[run.id]),
        {"action": "preview", **SEEDS_BY_EDGE},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert page.startswith('\n<form id="sweep-form"') or page.lstrip().startswith('<form id="sweep-form"')
    assert "<html" not in page and "Queue 9 runs" in page


def test_it_queues_the_confirmed_runs_and_opens_the_sweep(
    client, alice, run, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = preview_then_queue(client, run, name="harbour grid", **SEEDS_BY_EDGE)
    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("sweep_detail", args=[sweep.id])
    assert sweep.name == "harbour grid" and sweep.owner == alice and sweep.from_run == run
    runs = sweep.runs.all()
    assert runs.count() == 9 and {r.status for r in runs} == {RunStatus.PENDING}
    assert {(r.sweep_cell["seed"], r.sweep_cell["edge"]) for r in runs} == {
        (seed, edge) for seed in (1, 2, 3) for edge in (0.25, 0.5, 1.0)
    }


def test_it_shows_the_grid_again_when_it_changed_since_the_preview(client, alice, run):
    client.force_login(alice)
    page = post(client, run, action="preview", **SEEDS_BY_EDGE).content.decode()
    confirm = re.search(r'name="confirm" value="([^"]+)"', page).group(1)
    # The same size, other seeds: not what was previewed.
    changed = {**SEEDS_BY_EDGE, "values_1": "4, 5, 6"}
    for asked in (confirm, "9"):
        page = post(client, run, action="queue", confirm=asked, **changed).content.decode()
        assert 'id="sweep-changed"' in page and "Queue 9 runs" in page and "<tr><td>1</td><td>4</td>" in page
    assert not Sweep.objects.exists()


def error_of(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="id_{field}-error">(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


def test_it_puts_each_error_beside_the_axis_and_value_at_fault(client, alice, run):
    client.force_login(alice)
    page = post(
        client, run, action="preview", axis_1="seed", values_1="1, soon", axis_2="edge", values_2="0.5, 3"
    ).content.decode()
    assert "soon" in error_of(page, "values_1") and "seed" in error_of(page, "values_1")
    assert "edge" in error_of(page, "values_2") and "3" in error_of(page, "values_2")
    assert "Queue" not in page and not Sweep.objects.exists()


def test_it_asks_for_an_axis_for_values_and_values_for_an_axis(client, alice, run):
    client.force_login(alice)
    page = post(
        client, run, action="preview", axis_1="", values_1="1,2", axis_2="edge", values_2=" "
    ).content.decode()
    assert "Choose what these values vary" in error_of(page, "axis_1")
    assert "Give one or more values of edge" in error_of(page, "values_2")


def test_it_says_when_the_grid_is_too_big(client, alice, run, settings):
    settings.COSMOS_SWEEP_MAX_RUNS = 8
    client.force_login(alice)
    page = post(client, run, action="preview", **SEEDS_BY_EDGE).content.decode()
    assert 'id="sweep-errors"' in page and "9 runs" in page and "COSMOS_SWEEP_MAX_RUNS" in page


def test_it_lists_only_the_users_sweeps(client, alice, bob, sweep):
    client.force_login(alice)
    page = client.get(reverse("sweep_list")).content.decode()
    assert sweep.id in page and "harbour grid" in page and "3 × 3 = 9" in page
    assert "3 completed" in page and "6 pending" in page
    assert 'href="/sweeps/"' in page  # in the nav
    client.force_login(bob)
    assert sweep.id not in client.get(reverse("sweep_list")).content.decode()


def test_it_hides_a_sweep_from_a_stranger(client, bob, sweep):
    client.force_login(bob)
    for name in ("sweep_detail", "sweep_cancel_view"):
        assert client.get(reverse(name, args=[sweep.id])).status_code == 404
    assert client.post(reverse("sweep_cancel_view", args=[sweep.id])).status_code == 404
    assert sweep.runs.filter(status=RunStatus.PENDING).count() == 6


def test_it_lays_the_grid_out_by_the_first_two_axes(client, alice, sweep):
    client.force_login(alice)
    page = client.get(reverse("sweep_detail", args=[sweep.id])).content.decode()
    runs = {(r.sweep_cell["seed"], r.sweep_cell["edge"]): r for r in sweep.runs.all()}
    assert cells_of(page) == [runs[seed, edge].id for seed in (1, 2, 3) for edge in (0.25, 0.5, 1.0)]
    assert page.count("<video") == 3 and page.count('id="run-progress-') == 6
    assert page.count('hx-trigger="every 3s"') == 6  # only active cells poll
    assert "data-compare-play" in page and 'ws-connect="/ws/runs/"' in page
    assert "Cancel sweep" in page and "3 of 9 runs done" in page


def test_it_swaps_rows_and_columns_and_filters_the_other_axes(client, alice, run, no_workers):
    planned = sweep_plan(
        owner=alice,
        from_run=run,
        axes={"seed": [1, 2], "edge": [0.25, 0.5], "num_steps": [4, 8]},
    )
    sweep = sweep_create(plan=planned, owner=alice)
    runs = {tuple(r.sweep_cell.values()): r for r in sweep.runs.all()}
    client.force_login(alice)
    page = client.get(
        reverse("sweep_detail", args=[sweep.id]),
        {"rows": "edge", "cols": "num_steps", "seed": "2"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert page.lstrip().startswith('<div id="sweep-grid">') and "<html" not in page
    assert cells_of(page) == [runs[2, edge, steps].id for edge in (0.25, 0.5) for steps in (4, 8)]
    assert re.search(r'<select name="seed"><option value="1" >1</option><option value="2" selected>', page)
    # Unknown axes and values read as the first ones.
    page = client.get(
        reverse("sweep_detail", args=[sweep.id]), {"rows": "colour", "cols": "seed", "num_steps": "99"}
    ).content.decode()
    assert cells_of(page) == [runs[seed, 0.25, 4].id for seed in (1, 2)] + [
        runs[seed, 0.5, 4].id for seed in (1, 2)
    ]


def test_it_refreshes_one_cell_with_the_counts(client, alice, bob, sweep):
    cell = sweep.runs.filter(status=RunStatus.PENDING).first()
    client.force_login(alice)
    address = reverse("sweep_detail", args=[sweep.id])
    page = client.get(
        address, {"part": "cell", "run": cell.id}, headers={"HX-Request": "true"}
    ).content.decode()
    assert cells_of(page) == [cell.id] and 'hx-trigger="every 3s"' in page
    assert 'id="sweep-status" class="actions" hx-swap-oob="true"' in page and "3 of 9 runs done" in page
    Run.objects.filter(pk=cell.pk).update(
        status=RunStatus.COMPLETED, completed_at=timezone.now(), outputs=VIDEO
    )
    page = client.get(
        address, {"part": "cell", "run": cell.id}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<video" in page and "every 3s" not in page and "4 of 9 runs done" in page
    other = run_create(plan=run_plan(prompt_text="elsewhere", like=cell.id), owner=alice)
    assert (
        client.get(address, {"part": "cell", "run": other.id}, headers={"HX-Request": "true"}).status_code
        == 404
    )


def test_it_keeps_the_grids_address_in_a_refreshed_cell(client, alice, sweep):
    cell = sweep.runs.filter(status=RunStatus.PENDING).first()
    client.force_login(alice)
    page = client.get(
        reverse("sweep_detail", args=[sweep.id]),
        {"rows": "edge", "cols": "seed", "part": "cell", "run": cell.id},
        headers={"HX-Request": "true"},
    ).content.decode()
    back = reverse("sweep_detail", args=[sweep.id]) + "?rows=edge&amp;cols=seed"
    assert (
        f'name="next" value="{back}"' in page and f'hx-get="{back}&amp;part=cell&amp;run={cell.id}"' in page
    )


def test_it_sweeps_variants_of_the_runs_prompt(client, alice, run, django_capture_on_commit_callbacks):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        preview_then_queue(client, run, axis_1="prompt", values_1="dawn, dusk")
    texts = {r.prompt.prompt_text for r in Sweep.objects.get().runs.select_related("prompt")}
    assert texts == {"a foggy harbour at dawn", "a foggy harbour at dusk"}


def test_it_stars_and_rates_a_cell_and_comes_back_to_the_grid(client, alice, sweep):
    cell = sweep.runs.filter(status=RunStatus.COMPLETED).first()
    client.force_login(alice)
    back = reverse("sweep_detail", args=[sweep.id]) + "?rows=edge&cols=seed"
    response = client.post(reverse("run_star_view", args=[cell.id]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    client.post(reverse("run_rate_view", args=[cell.id]), {"next": back, "rating": "4"})
    cell.refresh_from_db()
    assert cell.starred and cell.rating == 4
    page = client.get(back).content.decode()
    assert f'title="Unstar {cell.id}" aria-pressed="true"' in page
    assert f'value="{back.replace("&", "&amp;")}"' in page  # the next page kept in each cell's forms


def test_it_cancels_the_sweep_after_asking(client, alice, sweep, no_workers):
    client.force_login(alice)
    address = reverse("sweep_cancel_view", args=[sweep.id])
    page = client.get(address).content.decode()
    assert "Yes, cancel the sweep" in page and sweep.runs.filter(status=RunStatus.PENDING).count() == 6
    response = client.post(address)
    assert response.status_code == 302 and response["Location"] == reverse("sweep_detail", args=[sweep.id])
    assert not sweep.runs.filter(status=RunStatus.PENDING).exists()
    assert sweep.runs.filter(status=RunStatus.COMPLETED).count() == 3


def test_it_shows_staff_anyones_sweep(client, staff, sweep):
    client.force_login(staff)
    assert client.get(reverse("sweep_detail", args=[sweep.id])).status_code == 200
    assert sweep.id in client.get(reverse("sweep_list")).content.decode()


def test_it_reads_the_grid_in_the_same_queries_whatever_its_size(client, alice, run, sweep, no_workers):
    one_axis = sweep_create(plan=sweep_plan(owner=alice, from_run=run, axes={"seed": [7]}), owner=alice)
    client.force_login(alice)

    def queries(made) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("sweep_detail", args=[made.id])).status_code == 200
        return len(captured)

    assert queries(one_axis) == queries(sweep)


def test_it_shows_a_sweep_of_one_axis_in_a_row_and_one_without_axes(client, alice, run, no_workers):
    seeds = sweep_create(plan=sweep_plan(owner=alice, from_run=run, axes={"seed": [1, 2]}), owner=alice)
    single = sweep_create(plan=sweep_plan(owner=alice, from_run=run, axes=[]), owner=alice)
    client.force_login(alice)
    page = client.get(reverse("sweep_detail", args=[seeds.id])).content.decode()
    assert page.count('<th scope="row">') == 1 and len(cells_of(page)) == 2 and 'name="rows"' not in page
    page = client.get(reverse("sweep_detail", args=[single.id])).content.decode()
    assert cells_of(page) == [single.runs.get().id]


def test_it_offers_its_completed_runs_as_a_dataset(client, alice, sweep, run, no_workers):
    client.force_login(alice)
    page = client.get(reverse("sweep_detail", args=[sweep.id])).content.decode()
    link = reverse("export_new") + f"?sweep={sweep.id}"
    assert f'href="{link}"' in page
    form = client.get(link).content.decode()
    assert f'name="sweep" value="{sweep.id}"' in form  # the export page keeps the sweep as its filter
    empty = sweep_create(plan=sweep_plan(owner=alice, from_run=run, axes={"seed": [7]}), owner=alice)
    assert "sweep-export" not in client.get(reverse("sweep_detail", args=[empty.id])).content.decode()
