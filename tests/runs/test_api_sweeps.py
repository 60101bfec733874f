"""POST /api/sweeps (and its dry run), GET /api/sweeps, /api/sweeps/{id} and its cancel: the owner's
only, a stranger answered as for a missing id, every rejection a JSON 4xx."""

import pytest
from django.urls import reverse

from runs.models import ApiToken, Run, RunStatus, Sweep
from tests.api import api_call as api

GRID = [{"name": "seed", "values": [1, 2, 3]}, {"name": "edge", "values": [0.25, 0.5, 1.0]}]


@pytest.fixture
def alice_key(alice):
    return ApiToken.issue(user=alice, name="scripts")[1]


@pytest.fixture
def bob_key(bob):
    return ApiToken.issue(user=bob, name="scripts")[1]


@pytest.fixture(autouse=True)
def renders_are_shared(settings, tmp_path):
    settings.COSMOS_INPUT_ROOTS = [(tmp_path / "renders").resolve()]


def create(client, key, render_dir, **body):
    body = {"prompt": "a city at dusk", "inputs": str(render_dir), "axes": GRID, **body}
    return api(client, "post", reverse("api:sweeps"), key, body)


def test_it_queues_one_run_per_cell(
    client, alice_key, alice, render_dir, no_workers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = create(client, alice_key, render_dir, name="dusk grid", base={"num_steps": 8})
    assert response.status_code == 201, response.json()
    created = response.json()
    sweep = Sweep.objects.get(pk=created["sweep_id"])
    assert created["size"] == 9 and created["status"] == "queued"
    assert created["run_ids"] == list(sweep.runs.order_by("created_at", "id").values_list("id", flat=True))
    assert sweep.owner == alice and sweep.name == "dusk grid"
    assert {run.execution_config["parameters"]["num_steps"] for run in sweep.runs.all()} == {8}
    assert no_workers.schedule.call_count == 1 and no_workers.stage_run.call_count == 9


def test_a_dry_run_answers_the_plan_and_queues_nothing(client, alice_key, render_dir, no_workers):
    response = create(client, alice_key, render_dir, dry_run=True)
    assert response.status_code == 200
    plan = response.json()
    assert (
        plan["size"] == 9 and plan["cells"][1] == {"seed": 1, "edge": 0.5} and plan["nodes"] == ["local-sim"]
    )
    assert plan["axes"] == GRID
    assert not Sweep.objects.exists() and not Run.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"axes": [{"name": "seed", "values": [1, "soon"]}]}, "seed"),
        ({"axes": [{"name": "colour", "values": ["red"]}]}, "colour"),
        ({"axes": [{"name": "edge", "values": [0.5, 2]}]}, "edge"),
        ({"axes": []}, "axes"),
        ({"axes": [{"name": "seed", "values": []}]}, "axes"),
        ({"axes": GRID, "dry_run": "yes"}, "dry_run"),
        ({"axes": GRID, "extra": 1}, "extra"),
        ({"from_run": "rs_nosuchrun0000"}, "from_run"),
        ({"inputs": None, "model_type": "transfer1"}, "inputs"),
        ({"inputs": None}, "edge"),  # Cosmos 3 without inputs makes a text2video: no control to weigh
    ],
)
def test_it_rejects_a_bad_sweep_with_a_json_400_and_creates_nothing(
    client, alice_key, render_dir, change, field
):
    response = create(client, alice_key, render_dir, **change)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and response.json()["error"]
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_it_names_each_refused_value(client, alice_key, render_dir):
    axes = [{"name": "seed", "values": [1, "soon"]}, {"name": "edge", "values": [0.5, 2]}]
    errors = create(client, alice_key, render_dir, axes=axes).json()["errors"]
    assert {(error["axis"], error["value"]) for error in errors} == {("seed", "soon"), ("edge", 2)}


def test_it_refuses_a_sweep_bigger_than_the_maximum(client, alice_key, render_dir, settings):
    settings.COSMOS_SWEEP_MAX_RUNS = 8
    response = create(client, alice_key, render_dir, dry_run=True)
    assert response.status_code == 400
    assert response.json()["field"] == "size" and "9 runs" in response.json()["error"]


def test_it_shows_a_sweep_to_its_owner_and_to_nobody_else(client, alice_key, bob_key, render_dir, no_workers):
    sweep_id = create(client, alice_key, render_dir).json()["sweep_id"]
    mine = api(client, "get", reverse("api:sweep", args=[sweep_id]), alice_key)
    assert mine.status_code == 200
    detail = mine.json()
    assert detail["size"] == 9 and detail["counts"]["pending"] == 9 and not detail["ended"]
    assert detail["cells"][0]["cell"] == {"seed": 1, "edge": 0.25} and detail["cells"][0][
        "run_id"
    ].startswith("rs_")
    strangers = api(client, "get", reverse("api:sweep", args=[sweep_id]), bob_key)
    missing = api(client, "get", reverse("api:sweep", args=["sw_nosuchsweep00"]), bob_key)
    assert strangers.status_code == missing.status_code == 404
    assert strangers.json()["error"].replace(sweep_id, "ID") == missing.json()["error"].replace(
        "sw_nosuchsweep00", "ID"
    )
    listed = api(client, "get", reverse("api:sweeps"), alice_key).json()
    assert [sweep["sweep_id"] for sweep in listed["results"]] == [sweep_id] and listed["results"][0][
        "runs"
    ] == 9
    assert api(client, "get", reverse("api:sweeps"), bob_key).json()["count"] == 0


def test_it_cancels_the_owners_sweep_as_one(client, alice_key, bob_key, render_dir, no_workers):
    sweep_id = create(client, alice_key, render_dir).json()["sweep_id"]
    url = reverse("api:sweep_cancel", args=[sweep_id])
    assert api(client, "post", url, bob_key).status_code == 404
    assert Run.objects.filter(status=RunStatus.PENDING).count() == 9
    response = api(client, "post", url, alice_key)
    assert response.status_code == 202
    assert response.json()["cancelled_runs"] == 9 and response.json()["counts"]["cancelled"] == 9
    again = api(client, "post", url, alice_key)
    assert again.status_code == 409 and "already ended" in again.json()["error"]


def test_it_does_not_sweep_a_strangers_run(client, alice_key, bob_key, render_dir, no_workers):
    run_id = create(client, alice_key, render_dir).json()["run_ids"][0]
    response = create(client, bob_key, render_dir, from_run=run_id, prompt=None)
    assert response.status_code == 400 and response.json()["field"] == "from_run"
    swept = create(client, alice_key, render_dir, from_run=run_id, prompt=None, inputs=None)
    assert swept.status_code == 201, swept.json()
    assert Sweep.objects.get(pk=swept.json()["sweep_id"]).from_run_id == run_id
