"""From a sweep to a dataset, end to end on the stand-in: a 3 × 3 grid (seeds × edge weight) runs in
batches, every output carries its provenance, and `cosmos_export --sweep` writes a dataset the
webdataset library reads back, sample for sample what the database says, the same bytes twice."""

import hashlib
import io
import json
from pathlib import Path

import av
import pytest
import webdataset as wds
from django.core.management import call_command

from cosmos.provenance import read_provenance
from runs.models import Run, RunStatus
from runs.provenance import run_provenance
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services.sweeps import sweep_create, sweep_plan
from tests.videos import write_test_video

pytestmark = pytest.mark.slow

SEEDS_BY_EDGE = {"seed": [1, 2, 3], "edge": [0.25, 0.5, 1.0]}


@pytest.fixture
def finished_sweep(tmp_path, alice, fast_sim, no_workers):
    folder = tmp_path / "renders" / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    fast_sim.batch_size = 4
    fast_sim.save()
    plan = sweep_plan(owner=alice, prompt_text="a street at dusk", inputs=folder, axes=SEEDS_BY_EDGE)
    sweep = sweep_create(plan=plan, owner=alice, name="dusk")
    jobs = 0
    while (claim := claim_next_job(fast_sim)) is not None:
        pipeline = JobPipeline(claim.job)
        try:
            assert pipeline.launch() and pipeline.monitor() and pipeline.collect()
        finally:
            pipeline.close()
        jobs += 1
    assert jobs == 3  # nine runs in batches of four, four and one
    sweep.refresh_from_db()
    assert sweep.completed_at is not None
    return sweep, folder


def export(out: Path, sweep, user) -> dict:
    stdout = io.StringIO()
    call_command(
        "cosmos_export",
        "--out",
        str(out),
        "--sweep",
        sweep.id,
        "--user",
        user.username,
        "--json",
        stdout=stdout,
    )
    return json.loads(stdout.getvalue())


def test_it_exports_a_finished_sweep_as_a_dataset_read_back_by_webdataset(
    tmp_path, alice, bob, finished_sweep
):
    sweep, folder = finished_sweep
    runs = {run.id: run for run in Run.objects.filter(sweep=sweep).select_related("prompt", "node")}
    assert {run.status for run in runs.values()} == {RunStatus.COMPLETED} and len(runs) == 9
    source = hashlib.sha256((folder / "color.mp4").read_bytes()).hexdigest()

    result = export(tmp_path / "first", sweep, alice)
    assert result["samples"] == 9
    shards = sorted(str(path) for path in (tmp_path / "first").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert sorted(sample["__key__"] for sample in samples) == sorted(runs)
    cells = set()
    for sample in samples:
        run = runs[sample["__key__"]]
        record = json.loads(sample["json"])
        assert record == run_provenance(run)
        assert record["parameters"]["seed"] == run.sweep_cell["seed"]
        assert record["control_weights"]["edge"] == run.sweep_cell["edge"]
        assert [entry["sha256"] for entry in record["input_files"]] == [source]
        with av.open(io.BytesIO(sample["mp4"])) as container:
            assert next(container.decode(video=0)).width > 0  # playable
        # The file carries the same record itself.
        assert read_provenance(Path(run.output_file)) == record
        cells.add((run.sweep_cell["seed"], run.sweep_cell["edge"]))
    assert len(cells) == 9

    again = export(tmp_path / "second", sweep, alice)
    assert again["samples"] == 9
    first = {path.name: path.read_bytes() for path in (tmp_path / "first").iterdir()}
    second = {path.name: path.read_bytes() for path in (tmp_path / "second").iterdir()}
    assert first == second

    # A stranger exporting the same sweep id gets nothing of it.
    assert export(tmp_path / "strangers", sweep, bob)["samples"] == 0
