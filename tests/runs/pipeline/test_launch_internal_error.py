"""A fault of our own while a job is prepared ends its runs once (runs/pipeline/launch.py): given back to
the queue, they would launch, fail and be given back for ever, holding their GPUs each time."""

import logging

from runs.models import FailureKind, Run, RunStatus
from runs.pipeline.launch import Launching
from runs.services import run_create, run_execute, run_plan


def test_it_fails_the_run_once_and_logs_the_traceback(fast_sim, render_dir, monkeypatch, caplog):
    calls = []

    def broken_spec(self, live, staged):
        calls.append(live)
        raise KeyError("controls")

    monkeypatch.setattr(Launching, "_write_spec", broken_spec)
    run = run_create(plan=run_plan(prompt_text="a harbour at dawn", input_dir=render_dir))
    with caplog.at_level(logging.ERROR, logger="runs.pipeline.launch"):
        run = run_execute(run=run)
    assert run.status == RunStatus.FAILED
    assert run.failure_kind == FailureKind.INTERNAL
    assert "KeyError: 'controls'" in run.error_message
    assert len(calls) == 1
    assert not Run.objects.queued().exists()  # not given back, to fail the same way again
    assert [record.exc_info[0] for record in caplog.records] == [KeyError]
    assert run.job.status != "starting"
