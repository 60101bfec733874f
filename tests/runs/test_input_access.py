"""Which inputs a user may name through the web and the API (runs.services.inputs.inputs_reference_for)."""

import os
import re

import pytest

from inputs.services import input_set_register
from inputs.uploads import uploads_folder_of
from runs.services import RunRequestError, run_plan
from runs.services.inputs import inputs_reference_for
from tests.factories import PromptFactory, UserFactory
from tests.videos import write_test_video


def _render(folder):
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    return folder.resolve()


def _denied(reference, user) -> str:
    with pytest.raises(RunRequestError) as caught:
        inputs_reference_for(reference=str(reference), requester=user)
    assert caught.value.field == "inputs"
    return str(caught.value)


def test_it_lets_a_user_name_their_own_run_input_set_upload_and_earlier_folder(alice, tmp_path, settings):
    upload = _render(uploads_folder_of(alice) / "20261203-090000-abc123")
    registered = input_set_register(directory=_render(tmp_path / "prepared"), name="harbour", owner=alice)
    earlier = _render(tmp_path / "earlier")
    PromptFactory(owner=alice, inputs={"dir": str(earlier)})
    from tests.factories import RunFactory

    run = RunFactory(owner=alice, prompt=PromptFactory(owner=alice))
    assert inputs_reference_for(reference=run.id, requester=alice) == run.id
    assert inputs_reference_for(reference="harbour", requester=alice) == registered.directory
    assert inputs_reference_for(reference=str(upload), requester=alice) == str(upload)
    assert inputs_reference_for(reference=str(earlier), requester=alice) == str(earlier)
    assert inputs_reference_for(reference=str(earlier / "color.mp4"), requester=alice) == str(
        earlier / "color.mp4"
    )


def test_it_gives_a_stranger_one_answer_whether_or_not_the_thing_exists(alice, bob, tmp_path, settings):
    from tests.factories import RunFactory

    upload = _render(uploads_folder_of(alice) / "20261203-090000-abc123")
    input_set_register(directory=_render(tmp_path / "prepared"), name="harbour", owner=alice)
    run = RunFactory(owner=alice, prompt=PromptFactory(owner=alice))
    references = [run.id, "rs_doesnotexist00", "harbour", "no such set", upload, upload.parent / "missing"]
    answers = {re.sub(r"'.*'", "X", _denied(reference, bob)) for reference in [*references, "/etc", "/nope"]}
    assert answers == {"no input folder or run of yours named X"}


def test_it_lets_staff_name_anyones_inputs(alice, staff, tmp_path):
    upload = _render(uploads_folder_of(alice) / "20261203-090000-abc123")
    input_set_register(directory=_render(tmp_path / "prepared"), name="harbour", owner=alice)
    assert inputs_reference_for(reference=str(upload), requester=staff) == str(upload)
    assert inputs_reference_for(reference="harbour", requester=staff)
    _denied("/etc", staff)  # staff read users' data, not the server's


def test_it_allows_folders_under_the_input_roots_and_nothing_that_leads_out(bob, tmp_path, settings):
    shared = tmp_path / "shared"
    city = _render(shared / "city")
    secret = _render(tmp_path / "secret")
    os.symlink(secret, shared / "link")
    settings.COSMOS_INPUT_ROOTS = [shared.resolve()]
    assert inputs_reference_for(reference=str(city), requester=bob) == str(city)
    _denied(shared / ".." / "secret", bob)
    _denied(shared / "link", bob)  # a symbolic link is judged by where it leads
    _denied("city", bob)  # a relative path is never a path on the server


def test_it_refuses_someone_elses_inputs_in_a_plan_and_writes_nothing(alice, bob, tmp_path, fast_sim):
    from prompts.models import Prompt
    from runs.models import Run

    upload = _render(uploads_folder_of(alice) / "20261203-090000-abc123")
    with pytest.raises(RunRequestError, match="no input folder or run of yours"):
        run_plan(prompt_text="a harbour", input_dir=upload, requester=bob)
    with pytest.raises(RunRequestError, match="no input folder or run of yours"):
        run_plan(prompt_text="a harbour", source=str(upload / "color.mp4"), model="upscale4k", requester=bob)
    assert run_plan(prompt_text="a harbour", input_dir=upload, requester=alice).input_set is not None
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_keeps_like_to_the_requesters_own_runs_and_prompts(alice, bob):
    from tests.factories import RunFactory

    prompt = PromptFactory(owner=alice)
    run = RunFactory(owner=alice, prompt=prompt)
    for reference in (prompt.id, run.id, "ps_doesnotexist0"):
        with pytest.raises(RunRequestError, match="no run or prompt of yours") as caught:
            run_plan(like=reference, requester=bob)
        assert caught.value.field == "like"


def test_it_compares_upload_folders_by_path_not_by_text(db):
    first, tenth = UserFactory(username="first", id=1), UserFactory(username="tenth", id=10)
    tenths = _render(uploads_folder_of(tenth) / "a")  # .../uploads/u10/a starts with the text .../uploads/u1
    _denied(tenths, first)
    assert inputs_reference_for(reference=str(tenths), requester=tenth) == str(tenths)
