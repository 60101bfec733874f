"""The Hugging Face CLI's ``hf download`` (huggingface_hub), as ``cosmos_node download`` runs it on a
node to fill the cache ahead of a model's first run.

``hf download REPO [--revision R] [--local-dir DIR]``: into the hub cache (``$HF_HOME/hub``, see
cosmos3_download) or, with ``--local-dir``, into that folder (Transfer1's checkpoint layout). The files
come in under hf's ``Fetching N files`` bar on stderr (time by size); at the end the CLI prints the
snapshot's folder on stdout. A repository already there is found at once. A gated repository
(GATED) without HF_TOKEN in the environment, or any with ``--fail gated``, is refused as the Hub
refuses (401); ``--fail missing_checkpoint`` gives its 404; both exit 1.
"""

import hashlib
import os
import sys

from . import hf_errors
from .common import write_flush
from .cosmos3 import GUARDRAILS
from .cosmos3_download import fetch, repository_folder
from .cosmos3_spec import CHECKPOINTS

SCRIPT = "hf"
USAGE = "usage: hf download REPO_ID [--revision REVISION] [--local-dir LOCAL_DIR]"
GATED = ("nvidia/Cosmos-Guardrail1", "meta-llama/Llama-Guard-3-8B")  # licences to accept first
DEFAULT_GIB = 5.0  # [est] a repository the stand-in knows no size for
SIZES_GIB = {
    **{checkpoint.repository: checkpoint.download_gib for checkpoint in CHECKPOINTS.values()},
    **{repository: gib for repository, _, gib in GUARDRAILS},
}


def planned_output(args):
    return None


def parse(args):
    if args[:1] != ["download"] or len(args) < 2 or args[1].startswith("-"):
        write_flush(sys.stderr, f"{USAGE}\nhf: error: the stand-in knows only `hf download REPO_ID`\n")
        sys.exit(2)
    options, index = {"--revision": "main", "--local-dir": None}, 2
    while index < len(args):
        name, has_value, value = args[index].partition("=")
        if name not in options:
            write_flush(sys.stderr, f"{USAGE}\nhf: error: unrecognized arguments: {args[index]}\n")
            sys.exit(2)
        if not has_value:
            index += 1
            value = args[index] if index < len(args) else ""
        options[name] = value
        index += 1
    return args[1], options["--revision"], options["--local-dir"]


def run(sim, args):
    repository, revision, local_dir = parse(args)
    gib = SIZES_GIB.get(repository, DEFAULT_GIB)
    refused = "gated" if repository in GATED and not os.environ.get("HF_TOKEN") else sim.fail
    if refused in ("gated", "missing_checkpoint"):
        sim.spend(1)
        write_flush(sys.stderr, hf_errors.error(refused, repository, revision))
        return 1
    if local_dir is None:
        folder = into_cache(sim, repository, revision, gib)
    else:
        folder = local_dir
        marker = os.path.join(local_dir, ".cache", "huggingface", "download")
        if not os.path.isdir(marker):
            fetch(sim, gib)
            os.makedirs(marker, exist_ok=True)
    write_flush(sys.stdout, folder + "\n")
    return 0


def into_cache(sim, repository, revision, gib):
    """The snapshot folder in the hub cache; fetched first unless the revision's ref is there (the
    layout cosmos3_download reads, so a Cosmos 3 run then finds it downloaded)."""
    folder = repository_folder(repository)
    ref = os.path.join(folder, "refs", revision)
    if os.path.isfile(ref):
        with open(ref, encoding="utf-8") as handle:
            commit = handle.read().strip()
    else:
        fetch(sim, gib)
        commit = hashlib.sha1(f"{repository}@{revision}".encode()).hexdigest()
        os.makedirs(os.path.join(folder, "snapshots", commit), exist_ok=True)
        os.makedirs(os.path.dirname(ref), exist_ok=True)
        with open(ref, "w", encoding="utf-8") as handle:
            handle.write(commit)
    return os.path.join(folder, "snapshots", commit)
