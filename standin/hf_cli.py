"""What the Hugging Face CLI (``hf download``) prints on stderr when a checkpoint download fails.

Read in huggingface/huggingface_hub at ee0a4510f4bc15e26cb722be2efc2bdb01383ca0 (1.29.0.dev0), which is
what ``uvx hf>=1.3.5`` resolves to today: since v1.4.0 ``cli/hf.py`` catches the known errors, prints
``Error: <message>`` (``cli/_output.py``: bold red in the human format, plain with ``--format json``),
then ``Hint: set HF_DEBUG=1 as environment variable for full traceback.`` (gray), and exits 1. The
messages are ``cli/_errors.py``'s. A repository is named only when the failing request was an API URL
(``_parse_repo_info_from_url``): a whole-repository download starts with one (``repo_info``); a single
file's starts with its resolve URL, so its refusal says "This repository". A connection failure
becomes LocalEntryNotFoundError, printed with its cause (httpx's connection error).
"""

# The failure modes that make a download fail; the first download a run makes meets the hub ones.
HUB_FAILURES = ("gated", "hub_unreachable")
DOWNLOAD_FAILURES = (*HUB_FAILURES, "missing_checkpoint")

BOLD_RED, GRAY, RESET = "\x1b[1m\x1b[31m", "\x1b[90m", "\x1b[0m"


def error(fail, repository, revision, filename="", *, json_format=False):
    """The CLI's stderr for a download of ``repository`` (one ``filename``, or all of it) failing as
    ``fail`` (gated, hub_unreachable; anything else: not there, a 404)."""
    if fail == "gated":
        if filename:
            message = "Access denied. This repository requires approval."
        else:
            message = f"Access denied. Model '{repository}' requires approval."
    elif fail == "hub_unreachable":
        message = "Local entry not found. [Errno -3] Temporary failure in name resolution"
    elif filename:
        url = f"https://huggingface.co/{repository}/resolve/{revision}/{filename}"
        message = f"File not found in repository.\nURL: {url}"
    else:
        message = (
            f"Model '{repository}' not found.\n"
            "If the repo is private, make sure you are authenticated and your token has the required "
            "permissions.\n"
            f"If the repo does not exist, create it with: hf repos create {repository}"
        )
    hint = "Hint: set HF_DEBUG=1 as environment variable for full traceback."
    if json_format:
        return f"Error: {message}\n{hint}\n"
    return f"{BOLD_RED}Error: {message}{RESET}\n{GRAY}{hint}{RESET}\n"
