"""The compare page: chosen runs stay shown, every id asked for is accounted for, the picker searches
all of a user's runs, and each kind of result compares as what it is."""

import re

from django.urls import reverse
from django.utils import timezone

from runs.models import RunStatus
from tests.factories import RunFactory

VIDEO = {"video": "/x/output.mp4", "thumbnail": "/x/thumbnail.jpg", "dir": "/x"}


def completed(owner, *, minutes_ago: int = 0, outputs=None, **fields):
    return RunFactory(
        prompt__owner=owner,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now() - timezone.timedelta(minutes=minutes_ago),
        outputs=VIDEO if outputs is None else outputs,
        **fields,
    )


def compare(client, **params) -> str:
    response = client.get(reverse("compare"), params)
    assert response.status_code == 200
    return response.content.decode()


def notices(page: str) -> list[str]:
    """The notices' texts, tags removed."""
    block = page.split('id="compare-notices"')[1].split("</ul>")[0] if "compare-notices" in page else ""
    return [re.sub(r"<[^>]+>", "", item).strip() for item in re.findall(r"<li[^>]*>(.*?)</li>", block, re.S)]


def test_it_keeps_one_chosen_run_on_the_page_and_asks_for_another(client, alice):
    run = completed(alice)
    client.force_login(alice)

    page = compare(client, runs=run.id)

    assert page.count("<video") == 1 and f"<code>{run.id}</code>" in page
    assert "Add at least one more run below" in page and "What differs" not in page
    assert f'<input type="hidden" name="keep" value="{run.id}">' in page
    assert f'href="{reverse("compare")}" aria-label="Remove {run.id} from the comparison"' in page


def test_it_removes_a_run_and_keeps_the_others(client, alice):
    runs = [completed(alice, minutes_ago=index) for index in range(3)]
    client.force_login(alice)

    page = compare(client, runs=",".join(run.id for run in runs))

    assert f'?runs={runs[1].id},{runs[2].id}" aria-label="Remove {runs[0].id} from the comparison"' in page


def test_it_reads_a_strangers_run_exactly_like_an_unknown_id(client, alice, bob):
    theirs = completed(alice)
    mine = completed(bob)
    client.force_login(bob)

    page = compare(client, runs=f"{theirs.id},{mine.id},rs_0000nothing0")

    assert page.count("<video") == 1 and theirs.prompt.name not in page
    assert notices(page) == [
        f"No run of yours has the id {theirs.id}.",
        "No run of yours has the id rs_0000nothing0.",
    ]
    assert "Add at least one more run below" in page  # bob's own run stays


def test_it_reports_a_fifth_run_instead_of_dropping_it(client, alice):
    runs = [completed(alice, minutes_ago=index) for index in range(5)]
    client.force_login(alice)

    page = compare(client, runs=",".join(run.id for run in runs))

    assert page.count("<video") == 4 and f'aria-label="Remove {runs[4].id}' not in page
    assert notices(page) == [
        f"Compare shows four runs at most: {runs[4].id} was left out. Remove one below to make room."
    ]


def test_it_reports_ids_that_are_no_run_ids_and_cuts_long_ones(client, alice):
    client.force_login(alice)

    page = compare(client, runs="<b>bold</b>," + "x" * 300)

    assert notices(page) == [
        "No run of yours has the id &lt;b&gt;bold&lt;/b&gt;.",
        f"No run of yours has the id {'x' * 39}….",
    ]
    assert "<b>bold</b>" not in page


def test_it_searches_all_of_a_users_runs_in_the_picker_not_only_the_recent(client, alice, bob):
    oldest = completed(alice, minutes_ago=999, prompt__prompt_text="a lighthouse on a cliff in a storm")
    for index in range(30):
        completed(alice, minutes_ago=index)
    completed(bob, prompt__prompt_text="a lighthouse at night")  # a stranger's: never offered
    client.force_login(alice)

    assert oldest.id not in compare(client)  # the 30 latest only, without a search

    page = compare(client, q="lighthouse")
    picker = page.split('id="compare-candidates"')[1]
    assert re.findall(r'name="runs" value="(rs_\w+)"', picker) == [oldest.id]
    # As it is typed: the picker's list alone, the chosen runs left out.
    partial = client.get(
        reverse("compare"), {"q": "lighth*"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in partial and f'value="{oldest.id}"' in partial
    partial = client.get(
        reverse("compare"), {"q": "lighthouse", "keep": oldest.id}, headers={"HX-Request": "true"}
    ).content.decode()
    assert f'value="{oldest.id}"' not in partial and "No completed run of yours matches" in partial
    # By id too.
    assert re.findall(r'name="runs" value="(rs_\w+)"', compare(client, q=oldest.id.upper())) == [oldest.id]


def test_it_explains_a_picker_search_that_cannot_match(client, alice):
    completed(alice, prompt__prompt_text="a lighthouse on a cliff")
    client.force_login(alice)

    assert "give at least one word that is not excluded" in compare(client, q="-storm")
    page = compare(client, q="lightho")
    assert (
        "No completed run of yours matches <strong>lightho</strong>" in page
        and "<code>lightho*</code>" in page
    )
    # Every bare word made a prefix, as the prompt list suggests it; and only a search that finds.
    assert "<code>lightho* cli*</code>" in compare(client, q="lightho cli")
    for nothing_either in ("harbo", '"lightho on"', "rs_nosuchrun"):
        page = compare(client, q=nothing_either)
        assert "No completed run of yours matches" in page and "<code>" not in page.split("matches")[1]


def test_it_compares_reason_answers_as_text_side_by_side(client, alice, bob):
    answers = ["Yes: the road is clear.", "No: a <truck> blocks the left lane."]
    runs = [
        completed(alice, outputs={"answer": answer, "reasoning": "I looked."}, prompt__model_type="reason1")
        for answer in answers
    ]
    client.force_login(alice)

    page = compare(client, runs=f"{runs[0].id},{runs[1].id}")

    texts = re.findall(r'<blockquote class="compare-text" data-answer>(.*?)</blockquote>', page, re.S)
    assert texts == ["Yes: the road is clear.", "No: a &lt;truck&gt; blocks the left lane."]
    assert "<video" not in page and "data-compare-play" not in page and page.count("Reasoning") == 2
    client.force_login(bob)
    assert "data-answer" not in compare(client, runs=f"{runs[0].id},{runs[1].id}")


def test_it_compares_an_answer_beside_a_video_which_keeps_its_controls(client, alice):
    video = completed(alice)
    answer = completed(alice, outputs={"answer": "A harbour."}, prompt__model_type="reason2")
    client.force_login(alice)

    page = compare(client, runs=f"{video.id},{answer.id}")

    assert page.count("<video") == 1 and "data-compare-play" in page and "data-answer" in page


def differing_rows(page: str) -> list[str]:
    """The What differs table's row labels, in order."""
    table = page[page.index("<h2>What differs</h2>") :]
    return re.findall(r"<tr><th>([^<]+)</th>", table[: table.index("</table>")])


def test_it_lists_what_differs_in_the_run_pages_order_with_shared_settings_on_one_row(client, alice):
    """The prompt and the model first, then each model's settings in its own order; a setting two
    models share (the frame rate) is one row, not one per model's label."""
    transfer = completed(
        alice,
        prompt__model_type="transfer1",
        prompt__prompt_text="snow",
        execution_config={"parameters": {"controls": {"depth": 0.5}, "num_steps": 10, "fps": 24, "seed": 1}},
    )
    nano = completed(
        alice,
        prompt__model_type="cosmos3_nano",
        prompt__prompt_text="waves",
        execution_config={"parameters": {"model_mode": "text2video", "num_steps": 35, "fps": 16, "seed": 1}},
    )
    client.force_login(alice)

    rows = differing_rows(compare(client, runs=f"{transfer.id},{nano.id}"))

    assert rows[:2] == ["Prompt", "Model"]
    assert rows.count("FPS") == 1 and "Frame rate (fps)" not in rows
    assert rows.index("Depth weight") < rows.index("Steps") < rows.index("FPS") < rows.index("Mode")
    assert "Seed" not in rows  # the same in both
