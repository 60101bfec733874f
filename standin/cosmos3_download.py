"""Cosmos 3's checkpoint downloads (reference cosmos3.md §1.3): ``utils/checkpoint_db.py`` shells out to
the hf CLI through uv on every run; the stand-in reads the Hugging Face cache to decide whether that
run fetches (a first download: hf's progress bar on stderr, time by size) or finds everything cached.

The cache is ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; a repository
counts as downloaded when ``models--<org>--<name>/refs/<revision>`` exists, as in a real cache, and a
completed stand-in download writes that ref (and an empty snapshot folder).
"""

import hashlib
import os

from . import hf_cli
from .common import Bar, Crash

UV_PROJECT = "/workspace/cosmos_framework/utils/hf_cli"
DOWNLOAD_GIB_PER_SECOND = 0.5  # [est] a data-centre link to the Hugging Face CDN
FILES_PER_GIB = 2  # safetensors shards and configs, for hf's "Fetching N files" bar


def command(repository, revision):
    return [
        "uv",
        "run",
        "--isolated",
        "--project",
        UV_PROJECT,
        "--locked",
        "--no-default-groups",
        "hf",
        "download",
        "--format=json",
        repository,
        "--repo-type",
        "model",
        "--revision",
        revision,
        "--include",
        "*",
    ]


def hub_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def repository_folder(repository):
    return os.path.join(hub_cache(), f"models--{repository.replace('/', '--')}")


def hf_download(sim, repository, revision, gib, *, failing=False, stack=()):
    """_hf_download: log the command, run it (cached: seconds; first time: a fetch), return the snapshot
    folder. ``failing``: hf's error for sim.fail (standin/hf_cli.py, --format=json: no colours), then
    CalledProcessError."""
    argv = command(repository, revision)
    sim.info("checkpoint_db:181:_hf_download", " ".join(arg if arg != "*" else "'*'" for arg in argv))
    folder = repository_folder(repository)
    ref = os.path.join(folder, "refs", revision)
    if failing:
        sim.spend(3)
        raise Crash(
            [
                *stack,
                (
                    "checkpoint_db:183:_hf_download",
                    "result = subprocess.run(cmd, check=True, capture_output=False)",
                ),
            ],
            f"subprocess.CalledProcessError: Command '{argv}' returned non-zero exit status 1.",
            prelude=hf_cli.error(sim.fail, repository, revision, json_format=True),
        )
    commit = hashlib.sha1(f"{repository}@{revision}".encode()).hexdigest()
    if os.path.isfile(ref):
        with open(ref, encoding="utf-8") as handle:
            commit = handle.read().strip() or commit
        sim.spend(2)
    else:
        fetch(sim, gib)
        try:
            os.makedirs(os.path.join(folder, "snapshots", commit), exist_ok=True)
            os.makedirs(os.path.dirname(ref), exist_ok=True)
            with open(ref, "w", encoding="utf-8") as handle:
                handle.write(commit)
        except OSError:
            pass  # a read-only cache: the next run downloads again, as the real CLI would try to
    return os.path.join(folder, "snapshots", commit)


def fetch(sim, gib):
    """hf's own progress on stderr while the files come in."""
    files = max(1, round(gib * FILES_PER_GIB))
    bar = Bar(files, f"Fetching {files} files")
    for _ in range(files):
        sim.spend(gib / files / DOWNLOAD_GIB_PER_SECOND)
        bar.update()
    bar.close()
