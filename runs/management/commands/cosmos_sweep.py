import json
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from cosmos.profiles import PROFILES
from runs.management.commands.cosmos_run import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    owner_named,
    webhook_endpoint_for,
)
from runs.models import Run, RunStatus, Sweep
from runs.services import RunRequestError, SweepPlan, sweep_create, sweep_plan
from runs.services.sweep_axes import sweep_axes_read, sweep_axis_parse
from runs.terminal import SweepDisplay, follow_sweep, sweep_counts_text


def follow_sweep_to_end(sweep: Sweep, display: SweepDisplay) -> tuple[Sweep, int]:
    """Follow a sweep on ``display`` until every run of it has ended, then say how it ended.

    Only watches: workers run its runs. Returns the sweep and the exit status of a command that
    followed it: 0 every run completed, 1 some did not, 130 stopped (Ctrl-C) before its end, the
    sweep going on (the line says how to follow it again or cancel it). cosmos_sweep --follow and
    cosmos_monitor SWEEP_ID both end this way.
    """
    try:
        with display:
            sweep = follow_sweep(sweep, display)
    except KeyboardInterrupt:
        display.note(
            f"Stopped following; sweep {sweep.id} goes on. Follow it again: cosmos_monitor {sweep.id}; "
            f"cancel it: cosmos_cancel {sweep.id}"
        )
        return sweep, EXIT_INTERRUPTED
    counts = sweep.status_counts()
    display.note(f"Sweep {sweep.id} ended: {sweep_counts_text(counts)}")
    return sweep, 0 if counts[RunStatus.COMPLETED] == sum(counts.values()) else EXIT_FAILED


class Command(BaseCommand):
    help = (
        "Queue a sweep: one run per cell of a grid of axes, e.g. --axis seed=1,2,3 --axis edge=0.2,0.5,1. "
        "An axis is seed, prompt (whole texts; or, when PROMPT contains its first value, variants of "
        "PROMPT replacing it), inputs (input set names or ids, or folders), a control weight (edge, depth, "
        "seg, blur, …) or any parameter of the model by name. The grid and its size are shown and "
        "confirmed before anything is queued (--yes to skip; required without a terminal). "
        "Exit status: 0 queued (with --follow: every run completed), 1 a run did not complete, "
        "2 bad input or not confirmed, 130 stopped following (the sweep goes on; "
        "cosmos_monitor SWEEP_ID follows it again)."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prompt_text", nargs="?", help="What to generate; optional with a prompt axis or --from-run."
        )
        parser.add_argument(
            "input_dir", nargs="?", type=Path, help="Folder with color.mp4 and control videos."
        )
        parser.add_argument(
            "--axis",
            action="append",
            default=[],
            metavar="NAME=V1,V2,…",
            help="One axis of the grid (repeatable).",
        )
        parser.add_argument(
            "--axes-file",
            type=Path,
            metavar="FILE",
            help="Axes from a YAML or JSON file: {axis: [values]}, or {axes: {...}, base: {name: value}}.",
        )
        parser.add_argument("--model", help=f"Model: {', '.join(PROFILES)} (default: COSMOS_DEFAULT_MODEL).")
        parser.add_argument("--name", default="", help="Name of the sweep.")
        parser.add_argument("--negative", help="Negative prompt (default: the model's).")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A setting every cell shares: a parameter or a control weight (repeatable).",
        )
        parser.add_argument("--node", help='GPU node for every run (default: local-sim; "auto").')
        parser.add_argument("--priority", type=int, default=0, help="Queue priority of its runs (default 0).")
        parser.add_argument(
            "--from-run", metavar="RUN_ID", help="Sweep from this run: its prompt, inputs and settings."
        )
        parser.add_argument("--user", default=os.environ.get("COSMOS_USER"), help="Owner of the sweep.")
        parser.add_argument("--yes", action="store_true", help="Queue without asking.")
        parser.add_argument(
            "--follow",
            action="store_true",
            help="Wait with progress until every run has ended (Ctrl-C stops the waiting, not the sweep: "
            "cosmos_monitor SWEEP_ID follows it again).",
        )
        parser.add_argument(
            "--webhook",
            metavar="URL",
            help="An http(s) URL that gets the end of each of its runs, then sweep.completed, as signed JSON "
            "POSTs (Standard Webhooks). Needs --user; the secret to check signatures with is printed once.",
        )
        parser.add_argument("--json", action="store_true", help="Print only one JSON object on stdout.")

    def handle(self, *args, **options) -> None:
        self.as_json = options["json"]
        display = SweepDisplay(getattr(self.stderr, "_out", sys.stderr))
        self.webhook = None
        try:
            owner = owner_named(options["user"])
            plan = self._plan(options, owner)
            endpoint, secret = webhook_endpoint_for(options["webhook"], owner)
        except RunRequestError as exc:
            self._refuse(str(exc), errors=[{"axis": exc.field, "value": None, "message": str(exc)}])
        if plan.errors:
            for problem in plan.errors:
                display.note(f"error: {problem.message}")
            self._refuse(
                plan.errors[0].message, errors=[problem.to_dict() for problem in plan.errors], plan=plan
            )
        self._show(plan, display)
        if not options["yes"] and not self._confirmed(plan, options.get("stdin") or sys.stdin):
            self._refuse(
                f"the sweep of {plan.size} runs was not confirmed: nothing was queued "
                "(--yes queues without asking)",
                plan=plan,
            )
        try:
            with transaction.atomic():  # the endpoint commits with the sweep it is scoped to
                sweep = sweep_create(plan=plan, owner=owner, name=options["name"])
                if endpoint is not None:
                    endpoint.scope = sweep.id
                    endpoint.save()
        except RunRequestError as exc:
            self._refuse(str(exc), plan=plan)
        if endpoint is not None:
            self.webhook = {**endpoint.to_dict(), "secret": secret}
            if not self.as_json:
                display.note(f"Webhook {endpoint.id} to {endpoint.url}; its secret (shown once):")
                self.stderr.write(secret)
        run_ids = list(sweep.runs.order_by("created_at", "id").values_list("id", flat=True))
        display.note(
            f"Queued sweep {sweep.id}: {len(run_ids)} runs (cancel them all: cosmos_cancel {sweep.id})"
        )
        if not options["follow"]:
            self._emit(sweep, run_ids)
            return
        sweep, status = follow_sweep_to_end(sweep, display)
        self._emit(sweep, run_ids)
        if status:
            sys.exit(status)

    def _plan(self, options: dict, owner) -> SweepPlan:
        axes, base = ([], {})
        if options["axes_file"]:
            axes, base = self._axes_file(options["axes_file"])
        axes = axes + [sweep_axis_parse(text) for text in options["axis"]]
        for item in options["param"]:
            name, separator, value = item.partition("=")
            if not separator or not name.strip():
                raise RunRequestError(f"--param {item!r}: write it as NAME=VALUE", field="base")
            base[name.strip()] = value.strip()
        if not axes:
            raise RunRequestError("give at least one --axis NAME=V1,V2,… (or --axes-file)", field="axes")
        from_run = None
        if options["from_run"]:
            runs = Run.objects.for_user(owner) if owner is not None else Run.objects.all()
            from_run = runs.filter(pk=options["from_run"]).first()
            if from_run is None:
                raise RunRequestError(
                    f"--from-run {options['from_run']}: no such run (see cosmos_list)", field="from_run"
                )
        return sweep_plan(
            owner=owner,
            model_type=options["model"],
            prompt_text=options["prompt_text"],
            inputs=options["input_dir"],
            axes=axes,
            base=base,
            negative_prompt=options["negative"],
            node=options["node"],
            priority=options["priority"],
            from_run=from_run,
        )

    def _axes_file(self, path: Path) -> tuple[list, dict]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunRequestError(f"--axes-file {path}: cannot read it ({exc})", field="axes") from None
        try:
            return sweep_axes_read(text, format="json" if path.suffix.lower() == ".json" else "yaml")
        except RunRequestError as exc:
            raise RunRequestError(f"--axes-file {path}: {exc}", field="axes") from None

    def _show(self, plan: SweepPlan, display: SweepDisplay) -> None:
        """The grid on stderr: each axis and its values, then the size and where the runs go."""
        for notice in plan.notices:
            display.note(notice)
        for axis in plan.axes:
            values = ", ".join(
                value if isinstance(value, str) else json.dumps(value) for value in axis["values"]
            )
            display.note(f"  {axis['name']} ({len(axis['values'])}): {values}")
        if plan.base:
            display.note(
                "  every run: "
                + ", ".join(f"{name}={json.dumps(value)}" for name, value in plan.base.items())
            )
        nodes = ", ".join(sorted({cell.plan.node.name for cell in plan.cells}))
        shape = " × ".join(str(len(axis["values"])) for axis in plan.axes)
        display.note(f"{shape} = {plan.size} runs of {plan.profile.label} on {nodes}")

    def _confirmed(self, plan: SweepPlan, stdin) -> bool:
        if not stdin.isatty():
            self._refuse(
                f"no terminal to confirm the sweep of {plan.size} runs: add --yes to queue it", plan=plan
            )
        self.stderr.write(f"Queue these {plan.size} runs? [y/N] ", ending="")
        self.stderr.flush()
        return stdin.readline().strip().lower() in {"y", "yes"}

    def _refuse(self, message: str, *, errors: list | None = None, plan: SweepPlan | None = None) -> None:
        if self.as_json:
            record = {
                "sweep_id": None,
                "run_ids": [],
                "size": plan.size if plan else None,
                "status": "invalid",
            }
            self.stdout.write(json.dumps({**record, "error": message, "errors": errors or []}))
        raise CommandError(message, returncode=EXIT_BAD_INPUT)

    def _emit(self, sweep: Sweep, run_ids: list[str]) -> None:
        if not self.as_json:
            self.stdout.write(sweep.id)
            return
        record = {"sweep_id": sweep.id, "run_ids": run_ids, **sweep.to_dict()}
        if self.webhook:
            record["webhook"] = self.webhook  # with its secret: the one time it is shown
        self.stdout.write(json.dumps(record))
