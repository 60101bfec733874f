import pytest
from django.urls import reverse

from runs.models import RunStatus, Sweep
from runs.services.sweeps import sweep_create, sweep_plan
from tests.videos import write_test_video

CHANGELIST = reverse("admin:runs_sweep_changelist")


@pytest.fixture
def sweep(tmp_path, alice, no_workers) -> Sweep:
    folder = tmp_path / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    planned = sweep_plan(
        owner=alice, prompt_text="dusk", inputs=folder, axes={"seed": [1, 2], "edge": [0.5, 1]}
    )
    return sweep_create(plan=planned, owner=alice, name="dusk grid")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_it_lists_sweeps_with_their_runs_and_shows_one_with_its_cells(admin_client, sweep):
    listed = admin_client.get(CHANGELIST).content.decode()
    assert sweep.id in listed and "dusk grid" in listed and "4 runs: 4 queued" in listed
    page = admin_client.get(reverse("admin:runs_sweep_change", args=[sweep.pk])).content.decode()
    first = sweep.runs.order_by("created_at", "id").first()
    assert first.id in page and "&quot;seed&quot;" in page
    runs = admin_client.get(reverse("admin:runs_run_changelist") + f"?sweep__id__exact={sweep.pk}")
    assert runs.status_code == 200 and first.id in runs.content.decode()


def test_it_confirms_then_cancels_a_sweep_as_one(admin_client, sweep):
    data = {"action": "cancel", "_selected_action": [sweep.pk]}
    confirm = admin_client.post(CHANGELIST, data)
    assert (
        confirm.status_code == 200
        and "Cancel 1 sweep still going, as one: 4 runs" in confirm.content.decode()
    )
    assert sweep.runs.filter(status=RunStatus.PENDING).count() == 4
    done = admin_client.post(CHANGELIST, {**data, "apply": "yes"}, follow=True)
    assert "Cancelling 1 sweep: 4 runs asked to stop." in done.content.decode()
    assert sweep.runs.filter(status=RunStatus.CANCELLED).count() == 4


def test_it_keeps_non_staff_out(client, alice, sweep):
    client.force_login(alice)
    response = client.post(CHANGELIST, {"action": "cancel", "_selected_action": [sweep.pk], "apply": "yes"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert sweep.runs.filter(status=RunStatus.PENDING).count() == 4
