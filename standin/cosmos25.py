"""What Cosmos-Transfer2.5 and Cosmos-Predict2.5 share (their ``cosmos_oss``/imaginaire plumbing).

tyro's command line (hyphenated flags, underscores accepted, ``--x/--no-x`` booleans, errors in a box on
stderr and exit 2), sample files validated like pydantic (``Error validating parameters from '<file>' at
line i`` on stderr, exit 1; paths relative to the file's folder), the output folder's console.log and
debug.log, checkpoint downloads through the Hugging Face CLI (and its errors: standin/hf_cli.py), the
guardrails.
"""

import argparse
import json
import os
import sys

from . import hf_cli
from .common import ILLEGAL_ACCESS_MESSAGE, OOM_MESSAGE, Bar, Crash, blocklist_reason, error_text, write_flush
from .validation import Invalid, validate

VENV_TORCH = "/workspace/.venv/lib/python3.13/site-packages/torch"
HF_CLI = "uvx 'hf>=1.3.5' download"
HF_CACHE = "/root/.cache/huggingface/hub"
GUARDRAIL = ("nvidia/Cosmos-Guardrail1", "d6d4bfa899a71454a700907664f3e88f503950cf")


class TyroParser(argparse.ArgumentParser):
    """argparse with tyro's error box (on stderr, exit 2) instead of argparse's usage lines."""

    def error(self, message):
        if message.startswith("unrecognized arguments: "):
            title, text = "Unrecognized options", "Unrecognized options: " + message.split(": ", 1)[1]
        elif message.startswith("the following arguments are required"):
            title, text = "Required options", message[0].upper() + message[1:]
        else:
            title, text = "Parsing error", message[0].upper() + message[1:]
        write_flush(sys.stderr, tyro_box(title, [text, None, f"For full helptext, run {self.prog} --help"]))
        sys.exit(2)


def tyro_box(title, lines):
    width = max(len(line) for line in lines if line is not None)
    width = max(width, len(title) + 3)
    rows = [f"╭─ {title} {'─' * (width - len(title) - 1)}╮"]
    rows += [f"│ {'─' * width} │" if line is None else f"│ {line.ljust(width)} │" for line in lines]
    rows.append(f"╰{'─' * (width + 2)}╯")
    return "\n".join(rows) + "\n"


def parser(prog):
    return TyroParser(prog=prog, allow_abbrev=False, add_help=True)


def flag(parser, name, *aliases, **options):
    """``--name-with-hyphens``, also accepted with underscores, as tyro does."""
    hyphens = "--" + name.replace("_", "-")
    names = [*aliases, hyphens] + ([f"--{name}"] if "_" in name else [])
    parser.add_argument(*names, dest=name, **options)


def boolean(parser, name, default):
    hyphens = name.replace("_", "-")
    names = [f"--{hyphens}", f"--no-{hyphens}"]
    if "_" in name:
        names += [f"--{name}", f"--no_{name}"]
    parser.add_argument(*names, dest=name, default=default, action=BooleanFlag)


class BooleanFlag(argparse.Action):
    def __init__(self, option_strings, dest, default=None, **options):
        super().__init__(option_strings, dest, nargs=0, default=default, **options)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith(("--no-", "--no_")))


def read_items(path, stack):
    """_from_file's reading: one object (.json) or one a line (.jsonl), failing as it does."""
    suffix = os.path.splitext(path)[1]
    if suffix not in (".json", ".jsonl"):
        site = ("config:359:_from_file", 'raise ValueError(f"Unsupported file extension: {path.suffix}")')
        raise Crash([*stack, site], f"ValueError: Unsupported file extension: {suffix}")
    site = ("config:354:_from_file", "data_list = [json.loads(path.read_text())]")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if suffix == ".json":
            return [json.loads(text)]
        site = (
            "config:356:_from_file",
            "data_list = [json.loads(line) for line in path.read_text().splitlines()]",
        )
        return [json.loads(line) for line in text.splitlines() if line]
    except OSError as exc:
        raise Crash(
            [*stack, site], f"FileNotFoundError: [Errno 2] No such file or directory: {path!r}"
        ) from exc
    except ValueError as exc:
        raise Crash([*stack, site], error_text(exc)) from exc


def load_samples(paths, fields, overrides, model_name, *, stack, check=None, prepare=None):
    """Every sample of every file, CLI overrides winning over the file, validated with the file's folder as
    the current directory; the first invalid sample ends the process as the real one does. ``stack``: the
    frames down to from_files; ``prepare(data)`` runs the model's before-validators, ``check(values,
    data)`` its own validators."""
    samples = []
    for path in paths:
        items = read_items(path, stack)
        cwd = os.getcwd()
        os.chdir(os.path.dirname(os.path.abspath(path)))
        try:
            for index, data in enumerate(items):
                try:
                    merged = {**data, **overrides} if isinstance(data, dict) else data
                    merged = prepare(merged) if prepare else merged
                    values = validate(fields, merged)
                    if check:
                        check(values, merged)
                except Invalid as invalid:
                    message = invalid.message(model_name)
                    write_flush(
                        sys.stderr, f"Error validating parameters from '{path}' at line {index}\n{message}\n"
                    )
                    sys.exit(1)
                samples.append(values)
        finally:
            os.chdir(cwd)
    if not samples:
        write_flush(sys.stderr, "Error: No inference samples\n")
        sys.exit(1)
    names = set()
    for sample in samples:
        if sample["name"] in names:
            write_flush(sys.stderr, f"Error: Inference samplename {sample['name']} is not unique\n")
            sys.exit(1)
        names.add(sample["name"])
    return samples


def env_flag(name):
    """imaginaire's flags.py: an environment variable read as a boolean (true/1/yes/y), else False."""
    return os.environ.get(name, "").lower() in ("true", "1", "yes", "y")


def open_log_files(sim, output_dir, flags):
    """init_output_dir: the console line, then console.log (what the console shows) and debug.log."""
    from .common import Sink

    os.makedirs(output_dir, exist_ok=True)
    sim.info("init:96:_init_log_files", f"Log saved to {os.path.join(output_dir, 'console.log')}")
    for name, everything in (("console.log", False), ("debug.log", True)):
        handle = open(os.path.join(output_dir, name), "w", encoding="utf-8")  # noqa: SIM115 (closed by Sim)
        sim.sinks.append(Sink(handle, everything))
    sim.debug("init:176:init_output_dir", flags)


def snapshot_path(repository, revision, filename=""):
    folder = f"{HF_CACHE}/models--{repository.replace('/', '--')}/snapshots/{revision}"
    return f"{folder}/{filename}" if filename else folder


def hf_download(sim, repository, revision, filename="", *, failing=False, stack=()):
    """checkpoint_db._hf_download: the command line it logs, the path the CLI prints; ``failing``: the
    CLI's error for sim.fail (standin/hf_cli.py) and the CalledProcessError it leads to."""
    selector = filename or "--include '*'"
    command = f"{HF_CLI} {repository} --repo-type model --revision {revision} {selector}"
    sim.info("checkpoint_db:165:_hf_download", command)
    sim.spend(2)
    if failing:
        argv = ["uvx", "hf>=1.3.5", "download", repository, "--repo-type", "model", "--revision", revision]
        argv += [filename] if filename else ["--include", "*"]
        raise Crash(
            [*stack, ("checkpoint_db:166:_hf_download", "subprocess.check_call(cmd, text=True)")],
            f"subprocess.CalledProcessError: Command '{argv}' returned non-zero exit status 1.",
            prelude=hf_cli.error(sim.fail, repository, revision, filename),
        )
    write_flush(sys.stdout, snapshot_path(repository, revision, filename) + "\n")


def imaginaire_files(package):
    """Call-site names shared by the 2.5 repos (paths relative to /workspace, the repo root)."""
    source, guardrail = f"{package}/_src/imaginaire", f"{package}/_src/imaginaire/auxiliary/guardrail"
    return {
        "example": "examples/inference.py",
        "inference": f"{package}/inference.py",
        "config": f"{package}/config.py",
        "init": "packages/cosmos-oss/cosmos_oss/init.py",
        "checkpoint_db": f"{source}/utils/checkpoint_db.py",
        "core": f"{guardrail}/common/core.py",
        "presets": f"{guardrail}/common/presets.py",
        "blocklist": f"{guardrail}/blocklist/blocklist.py",
        "qwen3guard": f"{guardrail}/qwen3guard/qwen3guard.py",
        "video_filter": f"{guardrail}/video_content_safety_filter/video_content_safety_filter.py",
        "face_blur": f"{guardrail}/face_blur_filter/face_blur_filter.py",
        "contextlib": f"{VENV_TORCH}/utils/_contextlib.py",
        "module": f"{VENV_TORCH}/nn/modules/module.py",
    }


SUPPORT_CHECKPOINTS = [  # (name, uuid, repository, revision, file ("": the whole repository))
    (
        "nvidia/Cosmos-Reason1.1-7B",
        "cb3e3ffa-7b08-4c34-822d-61c7aa31a14f",
        "nvidia/Cosmos-Reason1-7B",
        "3210bec0495fdc7a8d3dbb8d58da5711eab4b423",
        "",
    ),
    (
        "Wan2.1/vae",
        "685afcaa-4de2-42fe-b7b9-69f7a2dee4d8",
        "nvidia/Cosmos-Predict2.5-2B",
        "f176dc95b4a70f53ce01c4b302851595e7322b00",
        "tokenizer.pth",
    ),
]


def support_downloads(sim):
    """The text encoder (Cosmos-Reason1.1) and the tokenizer (Wan2.1 VAE) every 2.5 model loads."""
    for name, uuid, repository, revision, filename in SUPPORT_CHECKPOINTS:
        sim.info("checkpoint_db:297:download", f"Downloading checkpoint {name}({uuid})")
        hf_download(sim, repository, revision, filename)


def write_config(path, package, model, hint_keys):
    """config.yaml: a short version of the pipeline's LazyConfig dump."""
    write_yaml(
        path,
        {
            "job": {"project": package, "group": "inference", "name": f"{model}_inference"},
            "checkpoint": {"load_training_state": False, "strict_resume": True},
            "model": {
                "_target_": f"{package}._src.imaginaire.lazy_config.instantiate",
                "config": {
                    "resolution": "720",
                    "state_t": 24,
                    "fps": 16,
                    "hint_keys": list(hint_keys),
                    "tokenizer": "Wan2.1/vae",
                    "text_encoder": "nvidia/Cosmos-Reason1.1-7B",
                    "sde": {"p_mean": 0.0, "p_std": 1.0, "sigma_max": 200, "sigma_min": 0.01},
                },
            },
        },
    )


def generate_chunk(sim, steps, *, step_seconds, decode_seconds, oom_stack, vae_stack):
    """One chunk's "Generating samples" bar, then its VAE decode; where the oom and crash modes fail."""
    bar = Bar(steps, "Generating samples")
    for _ in range(steps):
        if sim.fail == "oom":
            sim.spend(5)
            bar.close()
            raise Crash(oom_stack, OOM_MESSAGE)
        sim.spend(step_seconds)
        bar.update()
    bar.close()
    if sim.fail == "crash":
        sim.spend(decode_seconds / 3)
        raise Crash(vae_stack, ILLEGAL_ACCESS_MESSAGE)
    sim.spend(decode_seconds)


def guardrail_failure(sim):
    """Whether the guardrail checkpoint's download is the one that fails: gated (it needs a licence), or
    the hub unreachable (it is the run's first download)."""
    return sim.fail in hf_cli.HUB_FAILURES


def load_guardrails(sim, *, offload, stack):
    """create_text_guardrail_runner + create_video_guardrail_runner: Cosmos-Guardrail1's blocklist,
    Qwen3Guard, the video safety filter and RetinaFace (their own lines are hidden on the console)."""
    hf_download(sim, *GUARDRAIL, failing=guardrail_failure(sim), stack=stack)
    sim.debug("blocklist:50:__init__", "Loaded 1053 words/phrases from blocklist")
    sim.debug("blocklist:51:__init__", "Whitelisted 14 words/phrases from whitelist")
    sim.debug("blocklist:52:__init__", "Loaded 51 exact match words/phrases from blocklist")
    sim.spend(8)
    where = "CPU" if offload else "GPU"
    sim.debug(
        "qwen3guard:55:__init__" if offload else "qwen3guard:52:__init__",
        f"Moved Qwen3Guard model to {where}",
    )
    sim.spend(4)
    sim.debug(
        f"video_filter:{79 if offload else 83}:__init__", f"Moved video content safety filter to {where}"
    )
    sim.debug(f"face_blur:{88 if offload else 84}:__init__", f"Moved face blur filter to {where}")


def text_guardrail(sim, text):
    """run_text_guardrail: True when the prompt passes; the block reason is logged (hidden on console)."""
    sim.debug("core:47:run_safety_check", "Running guardrail: BLOCKLIST")
    sim.spend(1)
    reason = blocklist_reason(text)
    if reason:
        sim.critical(
            "presets:58:run_text_guardrail", f"GUARDRAIL BLOCKED: BLOCKLIST: {reason}", console=False
        )
        return False
    sim.debug("core:47:run_safety_check", "Running guardrail: QWEN3GUARD")
    sim.spend(1)
    return True


def video_guardrail(sim, frames):
    """run_video_guardrail: False when sim.fail is video_guardrail (every frame flagged)."""
    sim.debug("core:47:run_safety_check", "Running guardrail: VIDEOCONTENTSAFETYFILTER")
    sim.spend(15)
    if sim.fail != "video_guardrail":
        sim.debug("core:61:postprocess", "Running guardrail: RETINAFACEFILTER")
        return True
    for frame in range(min(frames, 3)):
        message = f"Unsafe frame detected in frame_number {frame}: Violence"
        sim.log("WARNING", "video_filter:135:is_safe_frames", message, console=False)
    sim.log(
        "WARNING",
        "video_filter:144:is_safe_frames",
        f"Unsafe frame count {frames} is greater than 5% of total frames {frames}",
        console=False,
    )
    sim.critical(
        "presets:74:run_video_guardrail",
        "GUARDRAIL BLOCKED: VIDEOCONTENTSAFETYFILTER: unsafe frames detected",
        console=False,
    )
    return False


def world_size():
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def write_yaml(path, data, indent=0):
    """A small YAML writer for config.yaml (mappings, lists of scalars, scalars)."""
    lines = []

    def scalar(value):
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(str(value))

    def emit(value, depth):
        pad = "  " * depth
        for key, item in value.items():
            if isinstance(item, dict):
                lines.append(f"{pad}{key}:")
                emit(item, depth + 1)
            elif isinstance(item, list):
                lines.append(f"{pad}{key}:" + (" []" if not item else ""))
                lines.extend(f"{pad}- {scalar(element)}" for element in item)
            else:
                lines.append(f"{pad}{key}: {scalar(item)}")

    emit(data, indent)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def planned_output(args):
    for index, arg in enumerate(args):
        name, has_value, value = arg.partition("=")
        if name in ("-o", "--output-dir", "--output_dir"):
            return value if has_value else args[index + 1]
    return None


def with_prompt(data, stack):
    """validate_prompt: a missing prompt is read from prompt_path (relative to the spec's folder)."""
    if isinstance(data, dict) and data.get("prompt") is None and data.get("prompt_path") is not None:
        path = data["prompt_path"]
        try:
            with open(path, encoding="utf-8") as handle:
                return {**data, "prompt": handle.read().strip()}
        except OSError as exc:
            raise Crash(stack, f"FileNotFoundError: [Errno 2] No such file or directory: {path!r}") from exc
    return data
