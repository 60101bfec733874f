"""Checkpoints the job could not get: Hugging Face refusing, lacking or not reaching them, or a
checkpoint file missing on the node. Each failure names the repository or file and what to do.

The texts come from the tools themselves, read in huggingface/huggingface_hub at
ee0a4510f4bc15e26cb722be2efc2bdb01383ca0 (1.29.0.dev0), with the tags v1.3.5 and v1.4.0 for the change
in how the CLI prints errors:

- ``utils/_http.py`` ``hf_raise_for_status`` words every refusal as ``<status> Client Error.`` and then:
  ``Cannot access gated repo for url <url>.`` (GatedRepoError), ``Repository Not Found for url: <url>.``
  (RepositoryNotFoundError, also a 401 on a repository API URL), ``Revision Not Found for url: <url>.``,
  ``403 Forbidden: <server message>.`` + ``Cannot access content at: <url>.`` (a token lacking a permission),
  ``Entry Not Found for url: <url>.`` (RemoteEntryNotFoundError). A 401 whose server message is
  ``Invalid credentials in Authorization header`` stays a plain HfHubHTTPError carrying that message; the
  Hub adds ``Invalid username or password.`` to a 401 without a usable token. The offline guard raises
  OfflineModeIsEnabled ``Cannot reach <url>: offline mode is enabled.``
- ``file_download.py`` and ``_snapshot_download.py`` turn a connection failure into LocalEntryNotFoundError
  (``An error happened while trying to locate the file(s) on the Hub ...``) and offline mode into ``...
  outgoing traffic has been disabled ...``.
- ``cli/_errors.py`` and ``cli/hf.py``: since v1.4.0 ``hf download`` prints one ``Error: `` line and exits
  1: ``Access denied. Model '<repo>' requires approval.``, ``Model '<repo>' not found.``, ``File not found in
  model '<repo>'.`` + ``URL: <url>``, ``Revision not found in model '<repo>'.``, ``Local entry not found.
  <cause>``, ``Not logged in. Run 'hf auth login' first.`` The repository is named only when the failing
  URL was an API URL (a whole-repository download); one file's refusal says ``This repository``, so the
  name then comes from the ``hf download`` command line. Up to v1.3.5 the CLI let the exception's
  traceback through (``huggingface_hub.errors.GatedRepoError: 401 Client Error. ...``): both are recognised.
- The downloaders run the CLI as a subprocess (Cosmos 2.5 ``uvx hf>=1.3.5 download``, Cosmos 3 ``uv run ...
  hf download``): ``subprocess.CalledProcessError: Command '[...]' returned non-zero exit status 1.``
- transformers' ``cached_file``: ``We couldn't connect to 'https://huggingface.co' to load this file``.
- A checkpoint file read from a folder (Transfer1's ``torch.load``) fails with ``FileNotFoundError: [Errno 2]
  No such file or directory: '<path>.pt'``; vLLM (Reason) with ``Invalid repository ID or local directory
  specified: '<path>'``; Cosmos 3 with ``Checkpoint directory does not exist: <path>``.

Hints say ``NODE`` for the node's name: a failure is classified from the log alone.
"""

import ast
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

KIND = "checkpoints"

# A Hugging Face URL: the repository, and for a file's URL its revision and path. A repository or file
# name may hold dots (Cosmos-Transfer2.5-2B) but a sentence's full stop after the URL is not part of it.
_NAME = r"[\w-]+(?:\.[\w-]+)*"
HUB_URL = re.compile(
    rf"https?://(?:huggingface\.co|hf\.co)/(?:api/(?:models|datasets|spaces)/)?(?P<repo>{_NAME}/{_NAME})"
    rf"(?:/(?:resolve|revision|tree|raw|blob)/(?P<revision>{_NAME})(?:/(?P<file>{_NAME}(?:/{_NAME})*))?)?"
)
# The downloader's subprocess, as Python reports it: an argument list or a command string.
CALLED_PROCESS = re.compile(
    r"CalledProcessError: Command '(?P<command>.+?)' returned non-zero exit status (?P<status>-?\d+)"
)
# The command line as a downloader logs it before running it (2.5's checkpoint_db, Cosmos 3's).
LOGGED_DOWNLOAD = re.compile(r"(?:^|[\s'\"])(?:hf|huggingface-cli)(?:[<>=!~][^\s']*)?'?\s+download\s+[^\n]*")
# `hf download` options that take a value (cli/download.py); the others are flags or --name=value.
VALUE_OPTIONS = {
    "--repo-type",
    "--revision",
    "--include",
    "--exclude",
    "--cache-dir",
    "--local-dir",
    "--token",
    "--max-workers",
    "--format",
}
# Models that read their checkpoints from a folder filled by the repository's own download script
# (Transfer1 and the tools built on it), rather than from the Hugging Face cache.
FOLDER_CHECKPOINT_MODELS = ("transfer1", "upscale4k", "prompt_upsampler")
SECRET = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b|(?<=--token[ =])[^\s',\]]+|(?<='--token', ')[^']+")


@dataclass(frozen=True)
class Names:
    """What the failure was about, as far as the log tells."""

    repository: str = ""
    revision: str = ""
    file: str = ""
    # The download command's program when hf was started through uv (uvx, uv run): "" otherwise.
    launcher: str = ""

    def repository_or(self, default: str) -> str:
        return self.repository or default

    def licence_page(self) -> str:
        return f"https://huggingface.co/{self.repository or '<repository>'}"

    def what(self) -> str:
        if self.repository and self.file:
            return f"{self.file} from {self.repository}"
        return self.repository or self.file or "the model's checkpoints"


@dataclass(frozen=True)
class Family:
    """Texts that mean one thing (gated, no such repository...), and the hint that says what to do."""

    name: str
    patterns: tuple[re.Pattern, ...]
    hint: Callable[[Names, str], str]


def _family(name: str, patterns: tuple[str, ...], hint: Callable[[Names, str], str]) -> Family:
    return Family(name, tuple(re.compile(p, re.MULTILINE) for p in patterns), hint)


def _download(model: str) -> str:
    return f"cosmos_node download NODE {model}"


FAMILIES: tuple[Family, ...] = (
    _family(
        "gated",
        (
            r"Cannot access gated repo for url ",
            r"Access denied\. (?:\w+ '(?P<repo>[^']+)'|This \w+) requires approval\.",
            r"Access to model (?P<repo>\S+) is restricted",
            r"GatedRepoError\b",
        ),
        lambda names, model: (
            f"Hugging Face refused the gated repository {names.repository_or('named in the log')}: accept "
            f"its licence at {names.licence_page()} with the account whose token the node uses, then set "
            "that token on the node (cosmos_node token NODE) and try the run again."
        ),
    ),
    _family(
        "unauthorized",
        (
            r"Invalid credentials in Authorization header",
            r"Invalid username or password\.",
            r"401 Client Error: Unauthorized for url",
            r"Client error '401 Unauthorized' for url",
            # A 403 that is not a gated repository: a token without the permission (a fine-grained one).
            r"403 Forbidden: [^\n]*\.\s*\n\s*Cannot access content at: \S+",
            r"403 Client Error: Forbidden for url",
            r"Not logged in\. Run '(?:hf auth|huggingface-cli) login' first\.",
            r"LocalTokenNotFoundError\b",
        ),
        lambda names, model: (
            f"Hugging Face did not accept the node's token for {names.repository_or('the download')} "
            "(none set, expired, mistyped or without read access): create a read token at "
            "https://huggingface.co/settings/tokens "
            "and set it with cosmos_node token NODE; a gated repository also needs its licence accepted at "
            f"{names.licence_page()}."
        ),
    ),
    _family(
        "revision",
        (
            r"Revision Not Found for url",
            r"Revision not found in \w+(?: '(?P<repo>[^']+)')?\.",
            r"RevisionNotFoundError\b",
        ),
        lambda names, model: (
            f"{names.repository_or('The repository')} has no revision "
            f"{names.revision or 'the model asks for'}: the model's image pins one the repository no "
            "longer has. Update the model's image on the node, then fetch its checkpoints with "
            f"{_download(model)}."
        ),
    ),
    _family(
        "repository",
        (
            r"Repository Not Found for url",
            r"(?:Model|Dataset|Space|Repository) '(?P<repo>[^'\n]+)' not found\.",
            r"Error: Repository not found\.",
            r"RepositoryNotFoundError\b",
        ),
        lambda names, model: (
            f"Hugging Face has no repository {names.repository_or('(see the log)')} the node may read: if "
            f"it is gated or private, accept its licence at {names.licence_page()} and set the node's token "
            "(cosmos_node token NODE); otherwise check the run's checkpoint setting."
        ),
    ),
    _family(
        "offline",
        (
            r"offline mode is enabled",
            r"outgoing traffic has been disabled",
            r"OfflineModeIsEnabled\b",
        ),
        lambda names, model: (
            f"Hugging Face is switched off on the node (HF_HUB_OFFLINE) and {names.what()} is not in its "
            f"cache: fetch the checkpoints first with {_download(model)}, or remove HF_HUB_OFFLINE from the "
            "model's environment on the node."
        ),
    ),
    _family(
        "unreachable",
        (
            r"We couldn't connect to '[^']*' to load(?:[^\n]*?it looks like (?P<repo>\S+) is not the path)?",
            r"An error happened while trying to locate the files? on the Hub",
            r"Local entry not found\.",
            r"host='(?:[\w-]+\.)*(?:huggingface\.co|hf\.co)'.*(?:Max retries|timed out|Failed to)",
            r"Failed to resolve '(?:[\w-]+\.)*(?:huggingface\.co|hf\.co)'",
            r"LocalEntryNotFoundError\b",
        ),
        lambda names, model: (
            f"The node could not reach Hugging Face to download {names.what()}: check its network (DNS, "
            "proxy, firewall: HTTPS to huggingface.co and its CDN), then fetch the checkpoints ahead with "
            f"{_download(model)}."
        ),
    ),
    # After the unreachable family: LocalEntryNotFoundError (a connection failure) ends in these words.
    _family(
        "entry",
        (
            r"Entry Not Found for url",
            r"File not found in \w+(?: '(?P<repo>[^']+)')?\.(?:\s*\n\s*URL: \S+)?",
            r"EntryNotFoundError\b",
        ),
        lambda names, model: (
            f"{names.repository_or('The repository')} has no file {names.file or '(see the log)'}"
            + (f" at revision {names.revision}" if names.revision else "")
            + ": the model's image expects a checkpoint the repository does not hold (an old image or a "
            f"wrong checkpoint variant). Check the run's checkpoint setting, update the image, and fetch the "
            f"checkpoints ahead with {_download(model)}."
        ),
    ),
    _family(
        "download",
        (r"CalledProcessError: Command '.*\b(?:hf|huggingface-cli)\W.*\bdownload\b",),
        lambda names, model: (
            f"Downloading {names.what()} (hf download) failed; the log's lines above it say why. Retry it "
            f"with progress: {_download(model)}; check the node's token (cosmos_node token NODE), the "
            f"licence at {names.licence_page()} and the node's network"
            + (
                f" (hf is started through {names.launcher}, which needs PyPI reachable from the node)."
                if names.launcher
                else "."
            )
        ),
    ),
    _family(
        "missing",
        (
            # A file the model reads from a folder: a weights file, or anything under a checkpoints folder
            # (an input video's path is neither).
            r"(?:FileNotFoundError|No such file or directory)[^\n]*?"
            r"'(?P<path>(?:[^'\n]*/)?checkpoints?/[^'\n]*|[^'\n]*\.(?:pt|pth|ckpt|safetensors|bin|jit))'",
            r"Invalid repository ID or local directory specified: '(?P<path>[^']+)'",
            r"Checkpoint directory does not exist: (?P<path>\S+)",
        ),
        lambda names, model: (
            f"The checkpoint {names.file or '(see the log)'} is not on the node: fetch the model's "
            f"checkpoints with {_download(model)}"
            + (
                " (its repository's scripts/download_checkpoints.py into the node's checkpoint folder)"
                if model in FOLDER_CHECKPOINT_MODELS
                else ""
            )
            + ", and check that the folder is mounted where the model looks."
        ),
    ),
)


def checkpoint_failure(text: str, *, model: str = "MODEL") -> tuple[str, str, str] | None:
    """(family, message, hint) when the cleaned log ``text`` shows a checkpoint that could not be had.

    The patterns find a text's words, not its line, and start with a word rather than ``^.*`` or
    ``\\b`` (either makes each of them crawl through a long log); the message is the whole line, or
    lines, the words are on.
    """
    for family in FAMILIES:
        for pattern in family.patterns:
            match = pattern.search(text)
            if match:
                start = text.rfind("\n", 0, match.start()) + 1
                end = text.find("\n", match.end())
                lines = text[start : end if end >= 0 else len(text)]
                names = _names(text, match, lines, end if end >= 0 else len(text))
                message = redact(" ".join(lines.split()))
                return family.name, message, redact(family.hint(names, model))
    return None


def _names(text: str, match: re.Match, lines: str, end: int) -> Names:
    """The repository, revision and file: from the matched lines (or the few after them), else the
    download command, else any Hugging Face URL in the log (the last: the one nearest the failure)."""
    groups = match.groupdict()
    if groups.get("path"):
        return Names(file=groups["path"])
    named = groups.get("repo") or ""
    url = HUB_URL.search(lines) or HUB_URL.search(text, end, end + 400)
    command = _last_download_command(text)
    if url and (not named or url["repo"] == named):
        named = url["repo"]
    if named:
        # The command's revision and file only when it downloaded that repository.
        same = command if command.repository == named else Names()
        return Names(
            named,
            (url["revision"] if url else "") or same.revision,
            (url["file"] if url else "") or same.file,
        )
    if command.repository:
        return command
    urls = list(HUB_URL.finditer(text))
    if urls:
        return Names(urls[-1]["repo"], urls[-1]["revision"] or "", urls[-1]["file"] or "")
    return Names()


def _last_download_command(text: str) -> Names:
    failed = list(CALLED_PROCESS.finditer(text))
    candidates = [m["command"] for m in reversed(failed)]
    candidates += [m.group(0) for m in reversed(list(LOGGED_DOWNLOAD.finditer(text)))]
    for command in candidates:
        names = download_arguments(_split(command))
        if names.repository:
            return names
    return Names()


def _split(command: str) -> list[str]:
    if command.startswith("["):
        try:
            argv = ast.literal_eval(command)
        except (ValueError, SyntaxError):
            argv = None
        if isinstance(argv, list):
            return [str(arg) for arg in argv]
    try:
        return shlex.split(command)
    except ValueError:  # an unbalanced quote in a truncated line
        return command.split()


def download_arguments(argv: list[str]) -> Names:
    """The repository, revision and first file of an ``hf download`` (or ``huggingface-cli download``)
    argument list; empty when it is not one."""
    for index, arg in enumerate(argv[1:], start=1):
        if arg == "download" and re.match(r"(?:.*/)?(?:hf|huggingface-cli)(?:$|[<>=!~])", argv[index - 1]):
            break
    else:
        return Names()
    positional, revision, rest = [], "", iter(argv[index + 1 :])
    for arg in rest:
        if arg in VALUE_OPTIONS:
            value = next(rest, "")
            revision = value if arg == "--revision" else revision
        elif arg.startswith("--revision="):
            revision = arg.partition("=")[2]
        elif not arg.startswith("-"):
            positional.append(arg)
    if not positional:
        return Names()
    launcher = argv[0] if argv[0].rpartition("/")[2] in ("uv", "uvx") else ""
    return Names(positional[0], revision, positional[1] if len(positional) > 1 else "", launcher)


def redact(text: str) -> str:
    """A token that reached a command line or a URL never reaches a run's message or hint."""
    return SECRET.sub("***", text)
