"""Every page at desktop (1440 px) and phone (390 px) width: screenshots under test-artifacts/layout/,
and no page that scrolls sideways on a phone.

The runs are set up as each state needs: one that never leaves the queue (its retry backoff ends
tomorrow), one followed through its run to its output, one cancelled from its page, a failed one, one
the guardrail blocked, and a copy of the finished one whose output curation deleted.
"""

import json

import pytest
from django.template.loader import render_to_string

from tests.browser.pages import ARTIFACTS, PASSWORD, browser_marks, log_in, wait_for_output
from tests.stack import manage

pytestmark = browser_marks(60)
# Slow enough to find the followed run in the middle of its steps, at both widths.
TIME_SCALE = 0.01

WIDTHS = {1440: 900, 390: 844}
PHONE = 390
SCREENSHOTS = ARTIFACTS / "layout"

SETUP = """
import json
from datetime import timedelta
from pathlib import Path
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from runs.models import Run, RunStatus
from runs.services import run_plan, run_submit
users = get_user_model().objects
users.create_superuser("carol", password={password!r})
alice = users.get(username="alice")

def submit(text, *, held=False):
    with transaction.atomic():  # the workers hear of it on commit, when its backoff is set
        run = run_submit(plan=run_plan(prompt_text=text, input_dir=Path({folder!r}), requester=alice), owner=alice)
        if held:
            Run.objects.filter(pk=run.pk).update(not_before=timezone.now() + timedelta(days=1))
    return run

held = submit("a lighthouse on a cliff in a storm, waves breaking below", held=True)
to_cancel = submit("a desert caravan under the milky way", held=True)
now = timezone.now()
def ended(kind, message, hint):
    return Run.objects.create(
        prompt=held.prompt, owner=alice, model_type=held.model_type, status=RunStatus.FAILED,
        failure_kind=kind, error_message=message, metadata={{"failure_hint": hint}},
        execution_config=held.execution_config, started_at=now, completed_at=now,
    )
failed = ended("oom", "CUDA out of memory. Tried to allocate 71.19 GiB", "Use fewer frames or a smaller resolution.")
blocked = ended(
    "blocked_by_guardrail", "Guardrail blocked generation. Prompt: a lighthouse on a cliff in a storm",
    "Cosmos's safety guardrail rejected the prompt. Reword it.",
)
followed = submit("a cyberpunk city at night, neon reflections on wet streets")
print(json.dumps({{
    "held": held.id, "to_cancel": to_cancel.id, "failed": failed.id, "blocked": blocked.id,
    "followed": followed.id, "prompt": followed.prompt_id,
}}))
"""

# Two completed runs like the followed one, their folders copies of its folder; curation deletes
# the second one's output.
COPIES = """
import json, shutil
from django.conf import settings
from runs.models import Run
from runs.services.curation import run_delete_outputs
source = Run.objects.get(pk={run_id!r})
copies = []
for _ in range(2):
    run = Run.objects.create(
        prompt=source.prompt, owner=source.owner, model_type=source.model_type, status=source.status,
        node=source.node, execution_config=source.execution_config, metadata=source.metadata,
        started_at=source.started_at, completed_at=source.completed_at,
    )
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    shutil.copytree(source.outputs["dir"], folder)
    run.outputs = json.loads(json.dumps(source.outputs).replace(source.outputs["dir"], str(folder)))
    run.save(update_fields=["outputs"])
    copies.append(run)
run_delete_outputs(run=copies[1])
print(json.dumps({{"copy": copies[0].id, "deleted": copies[1].id}}))
"""

# What makes a page wider than the window, for the failure message.
MEASURE = """() => {
  const width = window.innerWidth, wide = [];
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.width && box.right > width + 1) {
      const classes = typeof element.className === "string" ? element.className.trim().split(/\\s+/).filter(Boolean) : [];
      wide.push(`${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""}${classes.map(c => "." + c).join("")} to ${Math.round(box.right)} px`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide: wide.slice(0, 10)};
}"""

# Lines each advanced parameter's label takes.
LABEL_LINES = """() => Array.from(document.querySelectorAll("#run-form details .field > label")).map(label => {
  const range = document.createRange();
  range.selectNodeContents(label);
  return [label.textContent.trim(), new Set(Array.from(range.getClientRects()).map(box => Math.round(box.top))).size];
})"""


def shoot(page, name: str, load) -> dict:
    """``load(page)`` at each width, a full-page screenshot of each; how wide the page is on a phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    measured = {}
    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        load(page)
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        if width == PHONE:
            measured = page.evaluate(MEASURE)
    return measured


def goto(path: str):
    return lambda page: page.goto(path)


def assert_fits(name: str, measured: dict) -> None:
    assert measured["scrollWidth"] <= measured["innerWidth"], (
        f"{name} scrolls sideways at {PHONE} px: {measured['scrollWidth']} px wide; too wide: {measured['wide']}"
    )


@pytest.fixture(scope="module")
def states(browser, site, alice):
    """Runs in every state (ids by state), the followed run's live pages measured on the way."""
    environment = site["environment"]
    ids = json.loads(
        manage(
            environment,
            "shell",
            "--no-imports",
            "-c",
            SETUP.format(password=PASSWORD, folder=str(site["inputs"])),
        )
    )
    page = alice
    page.goto(f"/runs/{ids['followed']}/")
    page.wait_for_function(
        "() => { const bar = document.querySelector('[role=progressbar]');"
        " return bar && bar.dataset.status === 'running' && Number(bar.getAttribute('aria-valuenow')) >= 10; }"
    )
    live = {
        "run-running": shoot(page, "run-running", goto(f"/runs/{ids['followed']}/")),
        "dashboard-running": shoot(page, "dashboard-running", goto("/")),
    }
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/runs/{ids['followed']}/")
    wait_for_output(page, site)
    ids.update(
        json.loads(manage(environment, "shell", "--no-imports", "-c", COPIES.format(run_id=ids["followed"])))
    )
    return {**ids, "live": live}


@pytest.fixture(scope="module")
def cancelled(alice, states):
    """The queued run cancelled from its page: the question first dismissed, then accepted."""
    page, run_id = alice, states["to_cancel"]
    questions = []
    page.goto(f"/runs/{run_id}/")

    def answer(dialog, accept: bool):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.click("button.danger:has-text('Cancel')")  # returns once the question is answered
    status_after_no = page.request.get(f"/api/runs/{run_id}").json()["status"]
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.click("button.danger:has-text('Cancel')")
    page.wait_for_selector("main[data-run-status=cancelled]")
    return {"questions": questions, "status_after_no": status_after_no}


def test_it_asks_before_cancelling_a_run_and_cancels_only_once_told_to(cancelled, states):
    assert len(cancelled["questions"]) == 2
    assert cancelled["questions"][0].startswith(f"Cancel {states['to_cancel']}?")
    assert cancelled["status_after_no"] == "pending"  # "no" left it in the queue


@pytest.fixture(scope="module")
def carol(browser, site, states):
    page = log_in(browser, site, "carol")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def visitor(browser, site):
    context = browser.new_context(base_url=site["url"])
    page = context.new_page()
    yield page
    context.close()


def open_advanced(page) -> None:
    page.goto("/runs/new/")
    page.click("#run-form summary")


def post_without_token(page) -> None:
    """A form posted with no CSRF token (as a page left open past a new login does): the 403 page."""
    page.goto("/")
    with page.expect_navigation():
        page.evaluate(
            "() => { const form = Object.assign(document.createElement('form'), {method: 'post', action: '/queue/pause/'});"
            " document.body.append(form); form.submit(); }"
        )


def admin_action(page) -> None:
    """The admin's delete-outputs question for the first run listed (its button red)."""
    page.goto("/admin/runs/run/")
    page.locator("input.action-select").first.check()
    page.select_option("select[name=action]", "delete_outputs")
    page.locator("button[name=index]").first.click()
    page.wait_for_selector("input[type=submit].danger")


# (screenshot name, who looks, what to open: a path with {state} names, or a function of the page)
PAGES = [
    ("dashboard", "alice", "/"),
    ("runs", "alice", "/runs/"),
    ("run-queued", "alice", "/runs/{held}/"),
    ("run-cancel-question", "alice", "/runs/{held}/cancel/"),
    ("run-completed", "alice", "/runs/{followed}/"),
    ("run-cancelled", "alice", "/runs/{to_cancel}/"),
    ("run-failed", "alice", "/runs/{failed}/"),
    ("run-guardrail-blocked", "alice", "/runs/{blocked}/"),
    ("run-output-deleted", "alice", "/runs/{deleted}/"),
    ("new-run", "alice", "/runs/new/"),
    ("new-run-advanced", "alice", open_advanced),
    ("new-run-reworded", "alice", "/runs/new/?like={blocked}"),
    ("gallery", "alice", "/gallery/"),
    ("compare", "alice", "/compare/?runs={followed}&runs={copy}"),
    ("compare-pick", "alice", "/compare/"),
    ("prompts", "alice", "/prompts/"),
    ("prompt-detail", "alice", "/prompts/{prompt}/"),
    ("search", "alice", "/prompts/?q=city"),
    ("search-fragment", "alice", "/prompts/?q=cyber"),
    ("search-exclusions-only", "alice", "/prompts/?q=-desert"),
    ("login", "visitor", "/login/"),
    ("404", "alice", "/runs/rs_nosuchrun/"),
    ("403", "alice", post_without_token),
    ("500", "alice", "server-error"),
    ("admin", "carol", "/admin/"),
    ("admin-runs", "carol", "/admin/runs/run/"),
    ("admin-prompts", "carol", "/admin/prompts/prompt/"),
    ("admin-nodes", "carol", "/admin/nodes/gpunode/"),
    ("admin-delete-outputs", "carol", admin_action),
]


@pytest.mark.parametrize(("name", "who", "what"), PAGES, ids=[name for name, _, _ in PAGES])
def test_it_screenshots_the_page_and_it_fits_a_phone(request, site, states, cancelled, name, who, what):
    page = request.getfixturevalue(who)
    if what == "server-error":
        # The page Django serves on an unhandled error, served for one address (nothing here fails).
        html = render_to_string("500.html")  # as the site renders it: from no context at all
        page.route("**/broken/", lambda route: route.fulfill(status=500, body=html, content_type="text/html"))
        what = "/broken/"
    load = goto(what.format(**states)) if isinstance(what, str) else what
    try:
        assert_fits(name, shoot(page, name, load))
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("name", ["run-running", "dashboard-running"])
def test_it_fits_a_run_in_progress_on_a_phone(states, name):
    assert_fits(name, states["live"][name])


def test_it_keeps_every_advanced_parameter_label_on_two_lines_at_most(alice):
    for width, height in WIDTHS.items():
        alice.set_viewport_size({"width": width, "height": height})
        open_advanced(alice)
        lines = alice.evaluate(LABEL_LINES)
        assert lines and max(count for _, count in lines) <= 2, (width, lines)
    alice.set_viewport_size({"width": 1280, "height": 900})


def test_it_aligns_the_login_form(visitor):
    for width, height in WIDTHS.items():
        visitor.set_viewport_size({"width": width, "height": height})
        visitor.goto("/login/")
        boxes = visitor.evaluate(
            "() => Array.from(document.querySelectorAll('.login-form input:not([type=hidden])'))"
            ".map(input => { const box = input.getBoundingClientRect(); return [box.left, box.width]; })"
        )
        assert len(boxes) == 2 and boxes[0] == boxes[1], (width, boxes)  # one column, one width
