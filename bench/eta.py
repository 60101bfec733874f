"""How far the ETA a run shows is from the time it really still needed, for every model, on the stand-in.

    .venv/bin/python bench/eta.py [--runs 3] [--seconds 40] [--models cosmos3_nano,transfer1]

Runs every model (or those given) --runs times on the local-sim node with the same settings, then
with fewer steps (and a lower resolution) where the model has them, one after the other on a
fresh database. The
stand-in runs at a time scale that keeps the reference's phase ratios but turns each model's
minutes into about --seconds (a 25-minute upscale and a 90-second Reason answer alike; or one
--time-scale for all). Each run's ETA is read where users see it: the estimate its recorder stored with each
progress event. At the first event past 20, 40, 60 and 80 % it is compared with the time the run
really took from there to completion. The first run of a model has only the reference timings to
go on; the next ones learn from it; the varied run scales history to settings it has not seen.

Goal: from 20 % on, every ETA within 20 % of the real remainder. A remainder of a second or two
(Reason answers in a blink at this scale) is below what the stand-in can resolve: events reach the
database every 0.2 s and a finished job is noticed and collected within about as long, whatever
the time scale. So an ETA also counts as on target within RESOLUTION seconds; the strict count is
printed beside it. It also prints how often a shown ETA went up (only when a phase clearly
overran), and the stand-in's own timing: how its generation time changed with the varied setting,
against what the reference timings predict.
"""

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECKPOINTS = (20, 40, 60, 80)
GOAL = 0.20
RESOLUTION = 0.5  # seconds: the stand-in's event and collection latency (see above)
MODELS = (
    "cosmos3_nano",
    "cosmos3_super",
    "transfer1",
    "transfer2_5",
    "predict2_5",
    "upscale4k",
    "reason1",
    "reason2",
    "prompt_upsampler",
)
# Runs with other settings: history is scaled to them (the fallback along the keys).
VARIED = {
    "cosmos3_nano": [{"num_steps": "20"}, {"resolution": "480"}],
    "cosmos3_super": [{"num_steps": "20"}],
    "transfer1": [{"num_steps": "20"}],
    "transfer2_5": [{"num_steps": "20"}],
    "predict2_5": [{"num_steps": "20"}, {"resolution": "480"}],
    "upscale4k": [{"num_steps": "5"}],
}


def setup_django(data_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
    for name in [name for name in os.environ if name.startswith(("COSMOS_", "DATABASE_", "CELERY_"))]:
        del os.environ[name]
    os.environ.update(
        COSMOS_DATA_DIR=str(data_dir),
        COSMOS_SIM_RESOLUTION_SCALE="0.25",
        COSMOS_PROGRESS_INTERVAL="0.2",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def use_time_scale(model: str, options) -> float:
    """The stand-in's speed for this model's runs: --time-scale, or what makes one last --seconds."""
    from cosmos.timings import reference_timeline
    from nodes.models import GpuNode

    scale = options.time_scale or min(
        1.0, options.seconds / reference_timeline(model, {}, {"frames": 121}).seconds
    )
    GpuNode.objects.filter(name="local-sim").update(time_scale=scale, gpu_count=1)
    return scale


def run_once(model: str, inputs: Path, parameters: dict) -> str:
    from runs.services import run_create, run_execute, run_plan

    plan = run_plan(
        prompt_text="a foggy harbour at dawn", input_dir=inputs, model=model, parameters=parameters
    )
    run = run_execute(run=run_create(plan=plan))
    if run.status != "completed":
        sys.exit(f"{model}: the run {run.id} ended {run.status}: {run.error_message}")
    return run.id


def measure(run_id: str) -> dict:
    """The ETA against the real remainder at each checkpoint, its rises, and the generation's length."""
    from runs.eta.priors import DurationKey
    from runs.models import Run

    run = Run.objects.get(pk=run_id)
    rows = [
        row for row in run.progress.order_by("id") if row.stage != "queued" and row.eta_seconds is not None
    ]
    errors = {}
    for checkpoint in CHECKPOINTS:
        row = next((row for row in rows if row.percentage >= checkpoint), None)
        if row is None:
            continue
        real = (run.completed_at - row.timestamp).total_seconds()
        errors[checkpoint] = (row.eta_seconds - real, real)
    rises = sum(1 for before, after in itertools.pairwise(rows) if after.eta_seconds > before.eta_seconds)
    generating = [row.timestamp for row in rows if row.stage == "generating"]
    work = (generating[-1] - generating[0]).total_seconds() if len(generating) > 1 else None
    return {"errors": errors, "rises": rises, "work": work, "key": DurationKey.of(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per model with the same settings (default 3)"
    )
    parser.add_argument(
        "--seconds", type=float, default=40, help="about how long each run lasts (default 40)"
    )
    parser.add_argument("--time-scale", type=float, help="one stand-in speed for every model instead")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models (default: all)")
    options = parser.parse_args()
    models = [model for model in options.models.split(",") if model]
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-eta-") as scratch:
        scratch = Path(scratch)
        setup_django(scratch / "data")
        from django.core.management import call_command

        inputs = scratch / "inputs"
        call_command("cosmos_demo_inputs", str(inputs), stdout=open(os.devnull, "w"))  # noqa: SIM115
        results: dict[str, list[tuple[str, dict]]] = {}
        scales: dict[str, float] = {}
        started = time.monotonic()
        for model in models:
            scales[model] = use_time_scale(model, options)
            for index in range(options.runs):
                kind = "reference" if index == 0 else "history"
                results.setdefault(model, []).append((kind, measure(run_once(model, inputs, {})), {}))
                print(f"  {model} run {index + 1}: {time.monotonic() - started:.0f} s in", file=sys.stderr)
            for settings in VARIED.get(model, []):
                results[model].append(("scaled", measure(run_once(model, inputs, settings)), settings))
        report(results, scales, options)


def report(results: dict, scales: dict, options) -> None:
    print(
        f"ETA error at 20/40/60/80 % ((shown − real remainder) / real remainder), {options.runs} runs "
        "per model + runs with other settings where it has them"
    )
    print(
        f"{'model':<18}{'run':<11}" + "".join(f"{c:>8}%" for c in CHECKPOINTS) + f"{'rises':>7}{'scale':>8}"
    )
    everything, by_kind = [], {}
    for model, runs in results.items():
        for kind, result, _ in runs:
            cells = "".join(_cell(result["errors"].get(c)) for c in CHECKPOINTS)
            print(f"{model:<18}{kind:<11}{cells}{result['rises']:>7}{scales[model]:>8.3f}")
            values = list(result["errors"].values())
            everything += values
            by_kind.setdefault(kind, []).extend(values)
    print(f"(in brackets: a remainder under {RESOLUTION / GOAL:g} s, off by less than {RESOLUTION} s)\n")
    for kind, values in (*by_kind.items(), ("overall", everything)):
        if values:
            strict = sum(1 for off, real in values if abs(off) <= GOAL * real)
            within = sum(1 for off, real in values if _on_target(off, real))
            relative = [abs(off) / real for off, real in values if real > 0]
            print(
                f"{kind:<10} on target: {within}/{len(values)} (strictly within {GOAL:.0%}: {strict})   "
                f"median |error| {statistics.median(relative):.0%}"
            )
    print(
        f"goal: from 20 % on, every ETA within {GOAL:.0%} of the real remainder "
        f"(or {RESOLUTION} s, the stand-in's resolution)"
    )
    print("\nthe stand-in's generation time with the varied setting, against the reference timings' ratio:")
    for model, runs in results.items():
        plain = [result for kind, result, _ in runs if kind != "scaled" and result["work"]]
        for kind, other, settings in runs:
            if kind != "scaled" or not plain or not other["work"]:
                continue
            measured = other["work"] / statistics.fmean(result["work"] for result in plain)
            expected = other["key"].timeline.work_seconds / plain[-1]["key"].timeline.work_seconds
            label = ", ".join(f"{name}={value}" for name, value in settings.items())
            print(f"  {model:<18}{label:<16}measured ×{measured:.2f}   reference ×{expected:.2f}")


def _on_target(off: float, real: float) -> bool:
    return abs(off) <= max(GOAL * real, RESOLUTION)


def _cell(error: tuple[float, float] | None) -> str:
    if error is None:
        return f"{'—':>9}"
    off, real = error
    relative = off / real if real > 0 else 0.0
    if abs(relative) > GOAL and _on_target(off, real):
        return f"{f'({relative:+.0%})':>9}"
    return f"{relative:>+9.0%}"


if __name__ == "__main__":
    main()
