"""Nothing is recorded for a run after its terminal state: its closing progress row is its last row."""

import subprocess
import sys

import pytest

from cosmos.failures import Failure
from cosmos.stages import Stage
from runs.models import Progress, Run, RunStatus
from runs.progress_recorder import ProgressRecorder, progress_append
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import run_create, run_plan
from runs.services.runs import run_cancel, run_finalize
from tests.factories import RunFactory
from tests.stack import ROOT, clean_environment, manage, own_database, query


def spawn(environment: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


CLOSING_STAGES = {Stage.COMPLETED, Stage.FAILED, Stage.CANCELLED}


def events(run: Run) -> list[tuple[str, str]]:
    """The run's rows in the order every reader sees them."""
    return list(Progress.objects.filter(run=run).order_by("timestamp", "id").values_list("stage", "message"))


def assert_closing_row_is_last(run: Run) -> None:
    stages = [stage for stage, _message in events(run)]
    closing = [index for index, stage in enumerate(stages) if stage in CLOSING_STAGES]
    assert len(closing) == 1, stages
    assert closing[0] == len(stages) - 1, f"rows after the end: {events(run)[closing[0] :]}"
    # The same by id alone (the relay and the pages' sequence numbers).
    newest = Progress.objects.filter(run=run).order_by("-id").first()
    assert newest.stage in CLOSING_STAGES


def test_it_records_nothing_for_a_run_that_has_ended(db):
    run = RunFactory(status=RunStatus.RUNNING)
    recorder = ProgressRecorder(run, interval=100)  # a monitor that still believes the run is running
    recorder.record(Stage.GENERATING, 40, "diffusion")
    recorder.record(Stage.GENERATING, 45, "held back by the throttle")
    assert run_finalize(run=Run.objects.get(pk=run.pk), status=RunStatus.CANCELLED, reason="Cancelled")
    recorder.record(Stage.SAVING, 90, "saving")
    recorder.flush()
    assert progress_append(run=run, stage=Stage.QUEUED, percentage=0, message="queued again") is None
    assert events(run) == [("generating", "diffusion"), ("cancelled", "Cancelled")]


def test_it_writes_one_closing_row_whoever_finalizes_second(db):
    run = RunFactory(status=RunStatus.RUNNING)
    assert run_finalize(run=run, status=RunStatus.CANCELLED, reason="Cancelled")
    failure = Failure("crashed", "too late", "")
    assert not run_finalize(run=Run.objects.get(pk=run.pk), status=RunStatus.FAILED, failure=failure)
    assert events(run) == [("cancelled", "Cancelled")]


def test_it_keeps_a_terminal_runs_metadata_as_the_end_left_it(db):
    run = RunFactory(status=RunStatus.RUNNING, metadata={"timings": {"upload_seconds": 1.0}})
    late_monitor = Run.objects.get(pk=run.pk)  # loaded before the end, like a monitor that lost the race
    collector = Run.objects.get(pk=run.pk)
    assert collector.update_metadata(timings={"download_seconds": 2.0}, exit_code=0)
    assert late_monitor.update_metadata(timings={"model_load_seconds": 3.0})  # still running: merged
    run.refresh_from_db()
    assert run.metadata == {
        "timings": {"upload_seconds": 1.0, "download_seconds": 2.0, "model_load_seconds": 3.0},
        "exit_code": 0,
    }
    assert run_finalize(run=run, status=RunStatus.FAILED, failure=Failure("crashed", "boom", ""))
    assert not late_monitor.update_metadata(timings={"job_seconds": 9.0}, exit_code=1)
    assert not late_monitor.update_execution_config(job="jb_other")
    ended = Run.objects.get(pk=run.pk)
    assert ended.metadata == run.metadata and "job" not in ended.execution_config
    assert ended.status == RunStatus.FAILED


# Appenders that believe the run is still running, started before the end and going on after it.
APPENDER = """
from runs.models import Run
from runs.progress_recorder import progress_append
run, tries_after_end = Run.objects.get(pk="{run_id}"), 0
while tries_after_end < 50:
    ended = Run.objects.filter(pk=run.pk, status="cancelled").exists()
    progress_append(run=run, stage="generating", percentage=50, message="{name}")
    tries_after_end += ended
"""

FINALIZER = """
from runs.models import Progress, Run
from runs.services.runs import run_finalize
while Progress.objects.filter(run_id="{run_id}").count() < 100:  # the appenders are well under way
    pass
print(run_finalize(run=Run.objects.get(pk="{run_id}"), status="cancelled", reason="Cancelled"))
"""

CREATE_RUN = """
from runs.models import Run
from tests.factories import RunFactory
print(RunFactory(status="running").id)
"""

# The run's rows in the order every reader sees them (Progress's ordering), straight from the database.
ROWS = "SELECT id, stage FROM runs_progress WHERE run_id = ? ORDER BY timestamp, id"


@pytest.fixture
def deployment(tmp_path, settings):
    """A database of the test's own in the profile under test, shared by processes (a file or a server)."""
    postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    environment = clean_environment(COSMOS_DATA_DIR=str(tmp_path / "deployment"))
    with own_database(environment, postgres=postgres) as environment:
        yield environment


@pytest.mark.slow
def test_it_keeps_the_closing_row_last_while_other_processes_append(deployment):
    run_id = manage(deployment, "shell", "-c", CREATE_RUN).strip().splitlines()[-1]
    appenders = [
        spawn(deployment, "shell", "-c", APPENDER.format(run_id=run_id, name=f"appender {n}"))
        for n in range(3)
    ]
    finalized = manage(deployment, "shell", "-c", FINALIZER.format(run_id=run_id))
    for appender in appenders:
        _out, errors = appender.communicate(timeout=300)
        assert appender.returncode == 0, errors
    assert finalized.strip().splitlines()[-1] == "True"
    rows = query(deployment, ROWS, run_id)
    stages = [stage for _id, stage in rows]
    assert stages.count("cancelled") == 1 and stages[-1] == "cancelled", f"rows after the end: {rows[-5:]}"
    assert max(rows)[1] == "cancelled"  # last by id too


@pytest.mark.slow
def test_it_records_nothing_after_cancelling_one_run_of_a_batch_while_models_load(
    fast_sim, render_dir, settings
):
    settings.COSMOS_CANCEL_GRACE_SECONDS = 2.0
    fast_sim.batch_size = 3
    fast_sim.save()
    runs = [
        run_create(plan=run_plan(prompt_text=f"take {take}: a harbour", input_dir=render_dir))
        for take in range(3)
    ]
    cancelled = runs[1]

    def cancel_while_loading(update) -> None:
        # Another worker cancels the second run while the batch's models load.
        if update.stage == Stage.LOADING_MODELS and not Run.objects.get(pk=cancelled.pk).is_terminal:
            assert run_cancel(run=Run.objects.get(pk=cancelled.pk), reason="Cancelled by the user")

    pipeline = JobPipeline(claim_next_job(fast_sim).job, listeners=(cancel_while_loading,))
    try:
        assert pipeline.launch()
        assert pipeline.monitor()
        assert pipeline.collect()
    finally:
        pipeline.close()
    cancelled.refresh_from_db()
    assert cancelled.status == RunStatus.CANCELLED
    assert_closing_row_is_last(cancelled)
    for run in runs:
        run.refresh_from_db()
        if run.is_terminal:
            assert_closing_row_is_last(run)
        else:  # stopped with the batch for the other run's cancel: queued again, nothing after that
            assert run.status == RunStatus.PENDING and events(run)[-1][0] == Stage.QUEUED
