"""The pages in a real browser: runs made, followed live, played, compared and kept private."""

import json
import re

import pytest

from tests.browser.pages import browser_marks, log_in, run_id_of, screenshot, wait_for_output
from tests.stack import manage

pytestmark = browser_marks(90)

# Reports every value the progress bar shows, tagged with the document it showed in: a value
# that changes within one document changed without a reload.
WATCH_PROGRESS = """
document.addEventListener("DOMContentLoaded", () => {
  const report = () => {
    const bar = document.querySelector("[role=progressbar]");
    if (bar) console.log(JSON.stringify({
      document: performance.timeOrigin, value: Number(bar.getAttribute("aria-valuenow")), status: bar.dataset.status,
    }));
  };
  report();
  new MutationObserver(report).observe(document.body, {subtree: true, childList: true, attributes: true});
});
"""


@pytest.fixture(scope="module")
def first_run(alice, site):
    """A run alice creates on the new-run page, uploading her videos, watched to the end."""
    page = alice
    seen: list[dict] = []
    page.on("console", lambda message: message.text.startswith("{") and seen.append(json.loads(message.text)))
    page.context.add_init_script(WATCH_PROGRESS)
    page.goto("/runs/new/")
    page.fill("textarea[name=prompt_text]", "a cyberpunk city at night, neon reflections on wet streets")
    page.set_input_files("input[name=uploads]", sorted(str(video) for video in site["inputs"].glob("*.mp4")))
    screenshot(page, "new-run")
    page.click("#run-form button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/rs_\w+/$"))
    run_id = run_id_of(page)

    # Reload in the middle of the diffusion steps: the page must come back showing at least what
    # it showed before, as the database has it.
    page.wait_for_function(
        "() => { const bar = document.querySelector('[role=progressbar]');"
        " return bar && bar.dataset.status === 'running' && Number(bar.getAttribute('aria-valuenow')) >= 30; }"
    )
    before = float(page.get_attribute("[role=progressbar]", "data-percentage"))
    screenshot(page, "run-detail-running")
    page.reload()
    after = float(page.get_attribute("[role=progressbar]", "data-percentage"))
    api = page.request.get(f"/api/runs/{run_id}").json()

    wait_for_output(page, site)
    screenshot(page, "run-detail-completed")
    return {"id": run_id, "seen": seen, "before_reload": before, "after_reload": after, "api": api}


def test_it_sends_an_anonymous_visitor_to_log_in(browser, site, first_run):
    context = browser.new_context(base_url=site["url"])
    page = context.new_page()
    for path in ("/", f"/runs/{first_run['id']}/", f"/runs/{first_run['id']}/files/output.mp4"):
        page.goto(path)
        assert page.url.startswith(f"{site['url']}/login/?next="), path
    screenshot(page, "login")
    context.close()


def test_it_follows_a_new_run_live_to_the_end(first_run):
    documents: dict[float, list[dict]] = {}
    for event in first_run["seen"]:
        documents.setdefault(event["document"], []).append(event)
    # One document saw the bar move through the run and reach 100% with no reload in between.
    live = [
        events
        for events in documents.values()
        if events[0]["status"] == "running"
        and events[0]["value"] < 100
        and any(event["value"] == 100 and event["status"] == "completed" for event in events)
    ]
    assert live, documents
    values = [event["value"] for event in live[0]]
    assert values == sorted(values), "the bar went backwards"
    assert len(set(values)) > 3, "the bar jumped instead of moving"


def test_it_shows_the_right_progress_after_a_reload_mid_run(first_run):
    assert 30 <= first_run["before_reload"] <= first_run["after_reload"] < 100
    latest = first_run["api"]["progress"][-1]
    assert latest["percentage"] >= first_run["after_reload"]


def test_it_plays_and_seeks_the_output_video(alice, first_run):
    page = alice
    ranges = []
    page.on("response", lambda response: "output.mp4" in response.url and ranges.append(response.status))
    page.goto(f"/runs/{first_run['id']}/")
    page.evaluate(
        "async () => { const video = document.querySelector('#output-video'); await video.play(); }"
    )
    page.wait_for_function("document.querySelector('#output-video').currentTime > 0.2")
    target = page.evaluate(
        """() => new Promise(resolve => {
            const video = document.querySelector('#output-video');
            video.pause();
            video.addEventListener('seeked', () => resolve([video.currentTime, video.duration]), {once: true});
            video.currentTime = video.duration * 0.75;
        })"""
    )
    position, duration = target
    assert duration > 1
    assert abs(position - duration * 0.75) < 0.1
    assert page.evaluate("document.querySelector('#output-video').seekable.end(0)") == pytest.approx(duration)
    assert 206 in ranges, ranges  # the media view answers Range requests


@pytest.fixture(scope="module")
def second_run(browser, site, first_run):
    """Alice runs the first run again, on a page whose socket stays open but loses every event."""
    page = log_in(browser, site, "alice")
    lost: list = []

    def lose_every_event(socket):
        socket.connect_to_server().on_message(lambda message: lost.append(message))  # not passed on

    page.route_web_socket(re.compile(r"/ws/runs/rs_\w+/$"), lose_every_event)
    page.goto(f"/runs/{first_run['id']}/")
    page.click("button:has-text('Run again')")
    page.wait_for_url(lambda url: re.search(r"/runs/rs_\w+/$", url) and first_run["id"] not in url)
    second = run_id_of(page)
    wait_for_output(page, site)
    page.context.close()
    return {"id": second, "lost": len(lost)}


def test_it_shows_the_end_of_a_run_whose_socket_loses_events(second_run):
    # The page saw the run end (wait_for_output) although the socket passed nothing on.
    assert second_run["lost"] > 10


def test_it_plays_two_runs_in_sync_on_the_compare_page(alice, first_run, second_run):
    page = alice
    page.goto(f"/compare/?runs={first_run['id']}&runs={second_run['id']}")
    screenshot(page, "compare")
    videos = "Array.from(document.querySelectorAll('[data-compare] video'))"
    page.wait_for_function(f"{videos}.every(video => video.readyState >= 2)")
    page.click("[data-compare-play]")
    page.wait_for_function(f"{videos}.every(video => !video.paused && video.currentTime > 0.5)")
    times = page.evaluate(f"{videos}.map(video => video.currentTime)")
    assert max(times) - min(times) < 0.2, times

    page.click("[data-compare-play]")  # pause
    page.evaluate(
        "() => { const seek = document.querySelector('[data-compare-seek]');"
        " seek.value = 500; seek.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function(f"{videos}.every(video => video.paused && !video.seeking)")
    times, durations = page.evaluate(f"[{videos}.map(v => v.currentTime), {videos}.map(v => v.duration)]")
    assert max(times) - min(times) < 0.05, times
    assert times[0] == pytest.approx(min(durations) / 2, abs=0.1)


# Another completed run of the same prompt whose folder this writes by hand ({make} below), for
# outputs no stand-in leaves: control videos beside every video, or an image (Cosmos 3 text2image).
MAKE_RUN = """
import shutil
from django.conf import settings
from django.utils import timezone
from cosmos.media import probe_image, probe_video, write_image_thumbnail, write_thumbnail
from runs.models import Run, RunStatus
from runs.outputs import outputs_json
from tests.videos import write_test_image
source = Run.objects.get(pk="{run_id}")
now = timezone.now()
run = Run.objects.create(
    prompt=source.prompt, owner=source.owner, model_type=source.model_type,
    status=RunStatus.COMPLETED, started_at=now, completed_at=now,
)
folder = settings.COSMOS_OUTPUTS_DIR / run.id
folder.mkdir(parents=True)
{make}
run.save(update_fields=["outputs"])
print("run:", run.id)
"""
WITH_CONTROLS = """
video = shutil.copy(source.outputs["video"], folder / "output.mp4")
names = ["output.mp4"]
for hint in ("depth", "seg"):  # the output again: what they show does not matter here
    shutil.copy(video, folder / f"output_control_{hint}.mp4")
    names.append(f"output_control_{hint}.mp4")
write_thumbnail(video, folder / "thumbnail.jpg")
run.outputs = outputs_json(folder, names, video_info=probe_video(video))
"""
AN_IMAGE = """
image = write_test_image(folder / "output.jpg", width=320, height=176)
write_image_thumbnail(image, folder / "thumbnail.jpg")
run.outputs = outputs_json(folder, ["output.jpg"], image_info=probe_image(image))
"""


@pytest.fixture(scope="module")
def made_runs(site, first_run) -> dict[str, str]:
    """Two more runs like the first, written by hand in one Django process: their ids by what they show."""
    makes = {"controls": WITH_CONTROLS, "image": AN_IMAGE}
    script = "".join(
        MAKE_RUN.replace("{run_id}", first_run["id"]).replace("{make}", make) for make in makes.values()
    )
    made = re.findall(r"^run: (rs_\w+)$", manage(site["environment"], "shell", "-c", script), re.MULTILINE)
    return dict(zip(makes, made, strict=True))


def test_it_plays_the_control_videos_with_the_output_video(alice, made_runs):
    page = alice
    page.goto(f"/runs/{made_runs['controls']}/")
    screenshot(page, "run-detail-controls")
    followers = "Array.from(document.querySelectorAll('video[data-follows]'))"
    assert page.evaluate(f"{followers}.map(v => v.dataset.hint)") == ["depth", "seg"]
    page.wait_for_function(f"{followers}.every(video => video.readyState >= 2)")
    page.evaluate("async () => { await document.querySelector('#output-video').play(); }")
    page.wait_for_function(
        f"document.querySelector('#output-video').currentTime > 0.5 && {followers}.every(v => !v.paused)"
    )
    page.evaluate("document.querySelector('#output-video').pause()")
    page.wait_for_function(f"{followers}.every(video => video.paused && !video.seeking)")
    lead, times = page.evaluate(
        f"[document.querySelector('#output-video').currentTime, {followers}.map(v => v.currentTime)]"
    )
    assert all(abs(time - lead) < 0.1 for time in times), (lead, times)
    page.evaluate(
        "() => { const video = document.querySelector('#output-video'); video.currentTime = video.duration / 2; }"
    )
    page.wait_for_function(
        "() => { const lead = document.querySelector('#output-video');"
        f" return !lead.seeking && {followers}.every(v => !v.seeking && Math.abs(v.currentTime - lead.currentTime) < 0.1); }}"
    )


def test_it_compares_an_image_run_beside_videos_that_still_play_in_sync(
    alice, made_runs, first_run, second_run
):
    image_run = made_runs["image"]
    page = alice
    page.goto(f"/compare/?runs={image_run}&runs={first_run['id']}&runs={second_run['id']}")
    page.wait_for_function("document.querySelector('[data-compare] img').naturalWidth === 320")
    screenshot(page, "compare-with-image")
    videos = "Array.from(document.querySelectorAll('[data-compare] video'))"
    page.wait_for_function(f"{videos}.length === 2 && {videos}.every(video => video.readyState >= 2)")
    page.click("[data-compare-play]")
    page.wait_for_function(f"{videos}.every(video => !video.paused && video.currentTime > 0.5)")
    times = page.evaluate(f"{videos}.map(video => video.currentTime)")
    assert max(times) - min(times) < 0.2, times
    page.click("[data-compare-play]")  # pause


def test_it_shows_pages_to_their_owner_and_not_to_a_stranger(browser, site, alice, first_run):
    for name, path in (
        ("dashboard", "/"),
        ("runs", "/runs/"),
        ("gallery", "/gallery/"),
        ("prompts", "/prompts/"),
    ):
        response = alice.goto(path)
        assert response.status == 200, path
        screenshot(alice, name)
    alice.goto("/runs/")
    assert alice.locator(f"a[href='/runs/{first_run['id']}/']").count() >= 1

    bob = log_in(browser, site, "bob")
    response = bob.goto(f"/runs/{first_run['id']}/")
    assert response.status == 404
    assert bob.request.get(f"/runs/{first_run['id']}/files/output.mp4").status == 404
    bob.goto("/runs/")
    assert bob.locator(f"a[href='/runs/{first_run['id']}/']").count() == 0
    bob.context.close()
