"""The stand-in's own options, the launch log, and the dispatch to a model by its script path (or, for
Cosmos 3, by ``-m <module>``)."""

import contextlib
import importlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass

from .common import Crash, Sim, torchrun_report, traceback_lines, write_flush
from .cosmos25 import world_size

FAIL_MODES = (
    "none",
    "oom",
    "crash",
    "missing_checkpoint",
    "video_guardrail",
    "gated",
    "hub_unreachable",
    "nccl_timeout",
)
USAGE = (
    "usage: standin [--time-scale X] [--resolution-scale Y] [--fail MODE] "
    "(<script path> | -m <module>) <args...>"
)


@dataclass(frozen=True)
class Mode:
    script: str  # a script path, or a module name for python_m modes: the model module's SCRIPT
    name: str  # the model's module here, imported when a launch needs it (see ``module``)
    # Launched by torchrun: tracebacks get "[rank0]: " and torchrun's failure report. None: only when
    # WORLD_SIZE > 1, one process playing every rank (Cosmos 3 runs on one GPU with plain python -m).
    torchrun: bool | None
    report_exits: bool = True  # torchrun also reports a plain non-zero exit (transfer.py's keep their own)
    python_m: bool = False  # started as python -m <script>

    @property
    def module(self):
        """run(sim, args) -> exit code; planned_output(args) -> folder or None.

        Imported here, not with this module: a launch runs one model, and the stand-in's zipapp is
        compiled from source at every start (a zip holds no bytecode cache), so importing every
        model cost each launch a tenth of a CPU second.
        """
        return importlib.import_module(f".{self.name}", __package__)


MODES = (
    Mode("cosmos_transfer1/diffusion/inference/transfer.py", "transfer1", torchrun=True, report_exits=False),
    Mode("examples/inference.py", "transfer25", torchrun=True),
    Mode("examples/inference.py", "predict25", torchrun=True),  # the same script, with --inference-type
    Mode("scripts/inference.py", "reason1", torchrun=False),
    Mode("cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py", "upsampler", torchrun=False),
    Mode("cosmos_framework.scripts.inference", "cosmos3", torchrun=None, python_m=True),
    Mode("cosmos_reason2_utils.script.inference", "reason2", torchrun=False, python_m=True),
    Mode("hf", "hf_cli", torchrun=False),  # `hf download`, for cosmos_node download
)


def known_scripts():
    return sorted({f"-m {mode.script}" if mode.python_m else mode.script for mode in MODES})


def find_mode(script, args, python_m=False):
    if python_m:
        return next((mode for mode in MODES if mode.python_m and mode.script == script), None)
    normalized = os.path.normpath(script).replace(os.sep, "/")
    found = [
        mode
        for mode in MODES
        if not mode.python_m and (normalized == mode.script or normalized.endswith("/" + mode.script))
    ]
    if len(found) > 1:  # examples/inference.py: Predict2.5 takes --inference-type, Transfer2.5 does not
        typed = any(arg.replace("_", "-").split("=")[0] == "--inference-type" for arg in args)
        found = [mode for mode in found if (mode.name == "predict25") == typed]
    return found[0] if found else None


def parse_standin_options(argv):
    """Leading --time-scale/--resolution-scale/--fail (else the env fallbacks), then the script (or
    ``-m <module>``) + its args; returns (sim, args, python_m)."""
    values = {
        "time-scale": os.environ.get("COSMOS_SIM_TIME_SCALE", "1.0"),
        "resolution-scale": os.environ.get("COSMOS_SIM_RESOLUTION_SCALE", "1.0"),
        "fail": os.environ.get("COSMOS_SIM_FAIL") or "none",
    }
    index = 0
    while index < len(argv) and argv[index].startswith("--"):
        name, has_value, value = argv[index][2:].partition("=")
        if name not in values:
            usage_error(f"unknown stand-in option --{name}")
        if not has_value:
            index += 1
            if index >= len(argv):
                usage_error(f"--{name} needs a value")
            value = argv[index]
        values[name] = value
        index += 1
    python_m = index < len(argv) and argv[index] == "-m"
    index += python_m
    if index >= len(argv):
        usage_error("-m needs a module name" if python_m else "missing the script path")
    try:
        time_scale, resolution_scale = float(values["time-scale"]), float(values["resolution-scale"])
    except ValueError:
        usage_error("--time-scale and --resolution-scale take numbers")
    if not (time_scale >= 0 and resolution_scale > 0):
        usage_error("--time-scale must be >= 0 and --resolution-scale > 0")
    if values["fail"] not in FAIL_MODES:
        usage_error(f"unknown --fail mode {values['fail']!r}; one of {', '.join(FAIL_MODES)}")
    return Sim(time_scale, resolution_scale, values["fail"], argv[index]), argv[index + 1 :], python_m


def usage_error(message):
    write_flush(sys.stderr, f"{USAGE}\nstandin: error: {message}\n")
    sys.exit(2)


def record_launch(argv, script, mode, script_args):
    """One JSON line per process start in $COSMOS_SIM_LAUNCH_LOG, if set. ``video_save_folder`` is
    where the run's outputs go, as far as the arguments tell before parsing (None: stdout only)."""
    path = os.environ.get("COSMOS_SIM_LAUNCH_LOG")
    if path:
        folder = None
        if mode is not None:
            with contextlib.suppress(Exception):
                folder = mode.module.planned_output(script_args)
        entry = {"time": time.time(), "pid": os.getpid(), "argv": argv, "script": script}
        entry["video_save_folder"] = folder
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def main(argv):
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    sim, script_args, python_m = parse_standin_options(argv[1:])
    mode = find_mode(sim.script, script_args, python_m)
    record_launch(argv, sim.script, mode, script_args)
    if mode is None:
        write_flush(
            sys.stderr,
            f"standin: unknown Cosmos {'module' if python_m else 'script'} {sim.script!r}; known: "
            f"{', '.join(known_scripts())} "
            "(examples/inference.py is Predict2.5 with --inference-type, Transfer2.5 without)\n",
        )
        return 2
    ranks = world_size() if mode.torchrun is None else 1
    torchrun = ranks > 1 if mode.torchrun is None else mode.torchrun
    # A killed job unwinds normally, so no half-written video survives under its final name.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    others = None  # what the other ranks print, for a mode that plays several
    try:
        return mode.module.run(sim, script_args)
    except Crash as crash:
        if crash.signal is not None:  # killed: no traceback, its own (already rank-prefixed) text
            write_flush(sys.stderr, crash.prelude + "\n")
            torchrun_report(mode.script, ranks=ranks, signal=crash.signal)
            return 1
        lines = crash.prelude.splitlines() + traceback_lines(crash, sim.files)
        if ranks > 1:
            other = crash if crash.every_rank else mode.module.OTHER_RANK_FAILURE
            others = other.prelude.splitlines() + traceback_lines(other, sim.files)
    except SystemExit as exit:
        code = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
        if code and code != 143 and torchrun and mode.report_exits:
            torchrun_report(mode.script, code, ranks=ranks)
        return code
    except Exception as exc:  # anything unforeseen dies the way an unexpected error in the real script would
        lines = "".join(traceback.format_exception(exc)).splitlines()
    finally:
        sim.close_sinks()
    prefix = "[rank0]: " if torchrun else ""  # torchrun's workers prefix what they print on stderr
    write_flush(sys.stderr, "".join(f"{prefix}{line}\n" for line in lines))
    if others is not None:
        sim.spend(mode.module.OTHER_RANK_DELAY)
        for rank in range(1, ranks):
            write_flush(sys.stderr, "".join(f"[rank{rank}]: {line}\n" for line in others))
    if torchrun:
        torchrun_report(mode.script, ranks=ranks)
    return 1
