"""What a collect reads from an ended job, for a batch and for a job of one run (a batch of one)."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from cosmos.profiles import profile_for
from cosmos.progress import BatchProgress
from runs.pipeline.collect import JobEnd

TRANSFER1 = profile_for("transfer1")
LOG = (Path(__file__).parents[2] / "cosmos" / "fixtures" / "transfer1_edge.log").read_bytes()
PARAMETERS = {"num_steps": 35, "controls": {"edge": 1.0}, "use_distilled": False}


def job_end(*, runs: int, exit_code: int | None, batched: bool, log: bytes = LOG) -> JobEnd:
    progress = BatchProgress(
        [TRANSFER1.progress(frames=121, parameters=PARAMETERS, step_seconds=1.0) for _ in range(runs)],
        starts_item=TRANSFER1.starts_item,
    )
    progress.feed(log, 0.0)
    progress.finish(0.0)
    return JobEnd(
        files=[],
        log_text=log.decode(),
        progress=progress,
        exit_code=exit_code,
        batched=batched,
        stopped_for_cancel=False,
    )


def test_it_gives_a_run_alone_the_whole_log_as_written():
    ended = job_end(runs=1, exit_code=1, batched=False)
    assert ended.share_of(SimpleNamespace(batch_index=0)) == (None, LOG.decode())


def test_it_gives_a_batch_run_its_line_and_its_part_of_the_log():
    ended = job_end(runs=2, exit_code=1, batched=True)
    index, text = ended.share_of(SimpleNamespace(batch_index=1))
    assert index == 1 and text == ended.progress.log_of(1)


def test_it_counts_outputs_of_a_run_alone_only_when_the_job_exited_0():
    assert job_end(runs=1, exit_code=0, batched=False).counts(True)
    assert not job_end(runs=1, exit_code=1, batched=False).counts(True)
    assert job_end(runs=2, exit_code=1, batched=True).counts(True)


def test_it_queues_again_only_batch_runs_whose_video_never_began():
    first_video = LOG.split(b"running preprocessor")[0] + b"running preprocessor\n"
    batch = job_end(runs=2, exit_code=1, batched=True, log=first_video)
    assert not batch.ended_before(0) and batch.ended_before(1)  # run 0's failure ended the job
    start_up = LOG.split(b"running preprocessor")[0]
    alone = job_end(runs=1, exit_code=1, batched=False, log=start_up)
    assert not alone.ended_before(None)  # a model load that failed is the run's own failure
    assert not job_end(runs=2, exit_code=0, batched=True, log=start_up).ended_before(1)


def test_it_fails_every_run_of_a_batch_that_failed_loading_unless_one_is_named():
    start_up = LOG.split(b"running preprocessor")[0]
    shared = job_end(runs=2, exit_code=1, batched=True, log=start_up)
    assert not shared.ended_before(0) and not shared.ended_before(1)  # again would fail again
    named = replace(shared, blamed=1)
    assert named.ended_before(0) and not named.ended_before(1)
    lost = job_end(runs=2, exit_code=None, batched=True, log=start_up)
    assert lost.ended_before(0) and lost.ended_before(1)  # a node that restarted: given back
