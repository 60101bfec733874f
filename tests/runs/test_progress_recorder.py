from cosmos.stages import Stage
from runs.models import Progress
from runs.progress_recorder import ProgressRecorder
from tests.factories import RunFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rows(run) -> list[tuple[str, float]]:
    return list(Progress.objects.filter(run=run).values_list("stage", "percentage"))


def test_it_writes_at_most_one_row_per_interval_but_every_stage_change(db):
    run, clock = RunFactory(), FakeClock()
    recorder = ProgressRecorder(run, interval=0.5, clock=clock)
    recorder.record(Stage.GENERATING, 30, "a")
    for tenth in range(1, 5):
        clock.now = tenth / 10
        recorder.record(Stage.GENERATING, 30 + tenth, "b")
    recorder.record(Stage.SAFETY_CHECK, 95, "c")
    assert rows(run) == [("generating", 30.0), ("safety_check", 95.0)]
    clock.now = 0.6
    recorder.record(Stage.SAFETY_CHECK, 96, "d")
    assert rows(run)[-1] == ("safety_check", 95.0)  # too soon after the last write: held back
    recorder.flush()
    assert rows(run)[-1] == ("safety_check", 96.0)


def test_it_never_lets_the_percentage_fall(db):
    run = RunFactory()
    recorder = ProgressRecorder(run, interval=0)
    recorder.record(Stage.GENERATING, 50)
    recorder.record(Stage.GENERATING, 40)
    recorder.record(Stage.SAVING, 120)
    assert rows(run) == [("generating", 50.0), ("saving", 100.0)]


def test_it_continues_from_the_latest_row(db):
    run = RunFactory()
    ProgressRecorder(run, interval=0).record(Stage.GENERATING, 60)
    resumed = ProgressRecorder(run, interval=0)
    assert resumed.percentage == 60
    resumed.record(Stage.GENERATING, 10)
    assert rows(run) == [("generating", 60.0)]


def test_it_tells_listeners_about_every_update(db):
    seen = []
    recorder = ProgressRecorder(RunFactory(), interval=100, listeners=(seen.append,))
    recorder.record(Stage.GENERATING, 1)
    recorder.record(Stage.GENERATING, 2)
    assert [update.percentage for update in seen] == [1, 2]


def test_it_makes_an_event_live_only_once_its_row_is_committed(
    db, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from runs.progress_recorder import progress_append

    settings.COSMOS_LIVE_RELAY = False  # scale-out: the recorder sends each event to the pages itself
    sent = []
    monkeypatch.setattr("runs.live._send", sent.append)
    run = RunFactory()
    with django_capture_on_commit_callbacks(execute=True):
        row = progress_append(run=run, stage=Stage.GENERATING, percentage=5)
        assert sent == []  # inside the caller's transaction, which could still roll back
    assert sent == [row]


def test_it_stores_the_time_left_with_each_row_from_when_the_run_left_the_queue(db, fast_sim):
    run = RunFactory(node=fast_sim, model_type="reason1", prompt__model_type="reason1")
    recorder = ProgressRecorder(run, interval=0)
    recorder.record(Stage.QUEUED, 0, "Waiting to start")
    recorder.record(Stage.UPLOADING, 0, "Staging inputs")
    recorder.record(Stage.LOADING_MODELS, 30, "Loading")
    recorder.record(Stage.SAVING, 98, "Answered")
    etas = list(Progress.objects.filter(run=run).values_list("stage", "eta_seconds"))
    assert etas[0] == ("queued", None)  # a queued run's estimate is its prior, read when shown
    left = [eta for _, eta in etas[1:]]
    assert all(eta is not None and eta >= 0 for eta in left)
    assert left == sorted(left, reverse=True)  # it only ever counts down here


def test_a_recorder_taking_over_goes_on_from_the_estimate_shown(db, fast_sim):
    run = RunFactory(node=fast_sim)
    first = ProgressRecorder(run, interval=0)
    first.record(Stage.UPLOADING, 0, "Staging inputs")
    first.record(Stage.GENERATING, 50, "Halfway")
    shown = Progress.objects.filter(run=run).latest("id").eta_seconds
    seen = []
    ProgressRecorder(run, interval=0, listeners=(seen.append,)).record(Stage.GENERATING, 51, "On")
    assert seen[0].eta_seconds is not None and seen[0].eta_seconds <= shown
