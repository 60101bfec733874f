"""Checkpoints a job could not get, from the texts huggingface_hub, transformers, torch and vLLM print
(cosmos/checkpoint_failures.py names the huggingface_hub commit they were read at)."""

import ast

import pytest

from cosmos.checkpoint_failures import download_arguments
from cosmos.failures import classify_failure
from cosmos.profiles import profile_for

REVISION = "d6d4bfa899a71454a700907664f3e88f503950cf"
GUARDRAIL_ARGV = (
    f"['uvx', 'hf>=1.3.5', 'download', 'nvidia/Cosmos-Guardrail1', '--repo-type', 'model', "
    f"'--revision', '{REVISION}', '--include', '*']"
)
PT = "general/edge/61f5694b-0ad5-4ecd-8ad7-c8545627d125_ema_bf16.pt"
T25_ARGV = (
    "['uvx', 'hf>=1.3.5', 'download', 'nvidia/Cosmos-Transfer2.5-2B', '--repo-type', 'model', "
    f"'--revision', '{REVISION}', '{PT}']"
)
NANO_ARGV = (
    "['uv', 'run', '--isolated', '--project', '/workspace/cosmos_framework/utils/hf_cli', '--locked', "
    "'--no-default-groups', 'hf', 'download', '--format=json', 'nvidia/Cosmos3-Nano', '--repo-type', "
    "'model', '--revision', 'main', '--include', '*']"
)


def download_failed(argv: str, hf_output: str, *, rank: bool = False) -> str:
    """A 2.5 or Cosmos 3 job whose checkpoint_db ran hf as a subprocess: hf's own lines, then Python's."""
    prefix = "[rank0]: " if rank else ""
    lines = [
        "[12-04 10:00:01|INFO|cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py:165:_hf_download] "
        f"{' '.join(ast.literal_eval(argv))}",  # the command as the downloader logs it
        *hf_output.splitlines(),
        "Traceback (most recent call last):",
        '  File "/workspace/cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py", line 166, in _hf_download',
        "    subprocess.check_call(cmd, text=True)",
        f"subprocess.CalledProcessError: Command '{argv}' returned non-zero exit status 1.",
    ]
    return "".join(f"{prefix}{line}\n" for line in lines)


def classify(text: str, model: str = "transfer2_5"):
    failure = profile_for(model).classify(exit_code=1, log_text=text, produced=False)
    assert failure.kind == "checkpoints", failure
    return failure


# --- refused: a gated repository whose licence the token's account has not accepted -------------------


def test_it_names_the_gated_repository_the_cli_refused():
    # hf >= 1.4 (cli/_errors.py): one Error line; a whole-repository download names the repository.
    hf = (
        "Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval.\n"
        "Hint: set HF_DEBUG=1 as environment variable for full traceback.\n"
    )
    failure = classify(download_failed(GUARDRAIL_ARGV, hf))
    assert failure.message == "Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval."
    assert "accept its licence at https://huggingface.co/nvidia/Cosmos-Guardrail1 " in failure.hint
    assert "cosmos_node token NODE" in failure.hint


def test_it_takes_the_gated_repository_from_the_command_when_the_cli_does_not_name_it():
    # One file's refusal comes from a resolve URL, which hf cannot parse a repository from.
    failure = classify(
        download_failed(T25_ARGV, "Error: Access denied. This repository requires approval.\n")
    )
    assert failure.message == "Error: Access denied. This repository requires approval."
    assert "https://huggingface.co/nvidia/Cosmos-Transfer2.5-2B " in failure.hint


def test_it_names_the_gated_repository_of_a_traceback_from_older_hubs():
    hf = (
        "huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-68e4c0de-3b1f0e2a)\n\n"
        f"Cannot access gated repo for url https://huggingface.co/api/models/nvidia/Cosmos-Guardrail1/revision/{REVISION}.\n"
        "Access to model nvidia/Cosmos-Guardrail1 is restricted. You must have access to it and be "
        "authenticated to access it. Please log in.\n"
    )
    failure = classify(download_failed(GUARDRAIL_ARGV, hf, rank=True), model="predict2_5")
    assert failure.message.startswith("Cannot access gated repo for url https://huggingface.co/api/models/")
    assert "https://huggingface.co/nvidia/Cosmos-Guardrail1 " in failure.hint


# --- the token: none, expired or mistyped --------------------------------------------------------------


@pytest.mark.parametrize(
    "hf",
    [
        # hf_raise_for_status keeps a 401 with this server message a plain HfHubHTTPError (httpx's text).
        "Error: Client error '401 Unauthorized' for url 'https://huggingface.co/api/models/nvidia/Cosmos3-Nano/"
        "revision/main' (Request ID: Root=1-68e4)\nFor more information check: "
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/401\nInvalid credentials in Authorization header\n",
        # Older hubs (requests): the 401 as requests words it, with the Hub's message.
        "huggingface_hub.errors.HfHubHTTPError: 401 Client Error: Unauthorized for url: "
        "https://huggingface.co/api/models/nvidia/Cosmos3-Nano/revision/main (Request ID: Root=1-68e4)\n\n"
        "Invalid username or password.\n",
        # A fine-grained token without read access to public gated repositories (hf_raise_for_status's 403).
        # _format puts the request id before the message's first newline, which leads it here.
        "Error: (Request ID: Root=1-68e4)\n\n"
        "403 Forbidden: Please enable access to public gated repositories in your fine-grained token "
        "settings to view this repository..\nCannot access content at: "
        "https://huggingface.co/api/models/nvidia/Cosmos3-Nano/revision/main.\n"
        "Make sure your token has the correct permissions.\n",
    ],
    ids=["httpx", "requests", "forbidden"],
)
def test_it_says_to_set_the_token_when_the_hub_rejects_it(hf):
    failure = classify(download_failed(NANO_ARGV, hf), model="cosmos3_nano")
    assert "401" in failure.message or "Invalid" in failure.message or "403 Forbidden" in failure.message
    assert "cosmos_node token NODE" in failure.hint
    assert "nvidia/Cosmos3-Nano" in failure.hint


def test_it_says_to_set_the_token_when_hf_has_none():
    failure = classify(download_failed(NANO_ARGV, "Error: Not logged in. Run 'hf auth login' first.\n"))
    assert failure.message == "Error: Not logged in. Run 'hf auth login' first."
    assert "cosmos_node token NODE" in failure.hint and "nvidia/Cosmos3-Nano" in failure.hint


# --- not there: repository, revision, file --------------------------------------------------------------


@pytest.mark.parametrize(
    "hf",
    [
        "Error: Model 'nvidia/Cosmos3-Nano' not found.\nIf the repo is private, make sure you are "
        "authenticated and your token has the required permissions.\nIf the repo does not exist, create it "
        "with: hf repos create nvidia/Cosmos3-Nano\n",
        "huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. (Request ID: Root=1-68e4)\n\n"
        "Repository Not Found for url: https://huggingface.co/api/models/nvidia/Cosmos3-Nano/revision/main.\n"
        "Please make sure you specified the correct `repo_id` and `repo_type`.\n",
    ],
    ids=["cli", "traceback"],
)
def test_it_names_a_repository_the_hub_does_not_have(hf):
    failure = classify(download_failed(NANO_ARGV, hf), model="cosmos3_nano")
    assert "nvidia/Cosmos3-Nano" in failure.message
    assert failure.hint.startswith("Hugging Face has no repository nvidia/Cosmos3-Nano the node may read")
    assert "https://huggingface.co/nvidia/Cosmos3-Nano " in failure.hint


def test_it_names_a_revision_the_repository_no_longer_has():
    hf = (
        "huggingface_hub.errors.RevisionNotFoundError: 404 Client Error. (Request ID: Root=1-68e4)\n\n"
        f"Revision Not Found for url: https://huggingface.co/api/models/nvidia/Cosmos-Guardrail1/revision/{REVISION}.\n"
    )
    failure = classify(download_failed(GUARDRAIL_ARGV, hf))
    assert failure.hint.startswith(f"nvidia/Cosmos-Guardrail1 has no revision {REVISION}")


@pytest.mark.parametrize(
    "hf",
    [
        "Error: File not found in repository.\nURL: "
        f"https://huggingface.co/nvidia/Cosmos-Transfer2.5-2B/resolve/{REVISION}/{PT}\n",
        "huggingface_hub.errors.RemoteEntryNotFoundError: 404 Client Error. (Request ID: Root=1-68e4)\n\n"
        f"Entry Not Found for url: https://huggingface.co/nvidia/Cosmos-Transfer2.5-2B/resolve/{REVISION}/{PT}.\n",
    ],
    ids=["cli", "traceback"],
)
def test_it_names_a_file_the_repository_does_not_hold(hf):
    failure = classify(download_failed(T25_ARGV, hf))
    assert failure.hint.startswith(f"nvidia/Cosmos-Transfer2.5-2B has no file {PT} at revision {REVISION}")
    assert "cosmos_node download NODE transfer2_5" in failure.hint


# --- not reachable ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # hf >= 1.4: LocalEntryNotFoundError with the connection error as its cause.
        "Error: Local entry not found. [Errno -3] Temporary failure in name resolution\n",
        # The exception itself (file_download.py), as older hubs let it through.
        "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file on "
        "the Hub and we cannot find the requested files in the local cache. Please check your connection and "
        "try again or make sure your Internet connection is on.\n",
    ],
    ids=["cli", "traceback"],
)
def test_it_says_to_check_the_network_when_the_hub_cannot_be_reached(text):
    failure = classify(download_failed(T25_ARGV, text))
    assert f"could not reach Hugging Face to download {PT} from nvidia/Cosmos-Transfer2.5-2B" in failure.hint
    assert "check its network" in failure.hint
    assert "cosmos_node download NODE transfer2_5" in failure.hint


def test_it_names_the_repository_transformers_could_not_reach():
    text = (
        "Traceback (most recent call last):\n"
        "OSError: We couldn't connect to 'https://huggingface.co' to load this file, couldn't find it in the "
        "cached files and it looks like meta-llama/Llama-Guard-3-8B is not the path to a directory containing "
        "a file named config.json.\nCheckout your internet connection or see how to run the library in offline "
        "mode at 'https://huggingface.co/docs/transformers/installation#offline-mode'.\n"
    )
    failure = classify(text, model="transfer1")
    assert failure.message.startswith("OSError: We couldn't connect to 'https://huggingface.co'")
    assert "download meta-llama/Llama-Guard-3-8B" in failure.hint


def test_it_says_hugging_face_is_switched_off_when_offline_mode_is_on():
    hf = (
        "Error: Local entry not found. Cannot reach https://huggingface.co/api/models/nvidia/Cosmos3-Nano/"
        "revision/main: offline mode is enabled. To disable it, please unset the `HF_HUB_OFFLINE` environment "
        "variable.\n"
    )
    failure = classify(download_failed(NANO_ARGV, hf), model="cosmos3_nano")
    assert "HF_HUB_OFFLINE" in failure.hint and "nvidia/Cosmos3-Nano" in failure.hint
    assert "cosmos_node download NODE cosmos3_nano" in failure.hint


# --- the subprocess alone ----------------------------------------------------------------------------


def test_it_names_the_download_when_only_the_subprocess_error_is_left():
    failure = classify(download_failed(T25_ARGV, ""), model="transfer2_5")
    assert failure.message.startswith(
        "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download'"
    )
    assert failure.hint.startswith(f"Downloading {PT} from nvidia/Cosmos-Transfer2.5-2B (hf download) failed")
    assert "started through uvx" in failure.hint


# --- a checkpoint file missing on the node ---------------------------------------------------------------

EDGE = "checkpoints/nvidia/Cosmos-Transfer1-7B/edge_control.pt"
TORCH_LOAD = f"""[rank0]: Traceback (most recent call last):
[rank0]:   File "/workspace/cosmos_transfer1/diffusion/inference/world_generation_pipeline.py", line 260, in _load_network
[rank0]:     net_state_dict = torch.load(ckpt_path, map_location="cpu", weights_only=False)
[rank0]:   File "/usr/local/lib/python3.12/dist-packages/torch/serialization.py", line 1425, in load
[rank0]:     with _open_file_like(f, "rb") as opened_file:
[rank0]:   File "/usr/local/lib/python3.12/dist-packages/torch/serialization.py", line 732, in __init__
[rank0]:     super().__init__(open(name, mode))
[rank0]: FileNotFoundError: [Errno 2] No such file or directory: '{EDGE}'
"""


@pytest.mark.parametrize(
    ("model", "text", "path"),
    [
        ("transfer1", TORCH_LOAD, EDGE),
        ("upscale4k", TORCH_LOAD.replace("edge_control", "4kupscaler_control"), "4kupscaler_control.pt"),
        (
            "reason1",
            "ValueError: Invalid repository ID or local directory specified: "
            "'/workspace/checkpoints/nvidia/Cosmos-Reason1-7B'.\nPlease verify the following requirements:\n",
            "/workspace/checkpoints/nvidia/Cosmos-Reason1-7B",
        ),
        (
            "cosmos3_nano",
            "ValueError: Checkpoint directory does not exist: /workspace/checkpoints/Cosmos3-Nano\n",
            "/workspace/checkpoints/Cosmos3-Nano",
        ),
    ],
    ids=["torch.load", "upscaler", "vllm", "cosmos3"],
)
def test_it_names_a_checkpoint_file_missing_on_the_node(model, text, path):
    failure = classify(text, model=model)
    assert path in failure.message
    assert failure.hint.startswith("The checkpoint ") and path in failure.hint
    assert f"cosmos_node download NODE {model}" in failure.hint


# --- what it leaves to the other kinds --------------------------------------------------------------------


def test_it_leaves_a_missing_input_video_a_crash():
    text = "FileNotFoundError: [Errno 2] No such file or directory: '/job/inputs/rs_a/color.mp4'\n"
    assert classify_failure(exit_code=1, log_text=text, produced_video=False).kind == "crashed"


def test_it_keeps_out_of_memory_and_guardrail_ahead_of_a_hub_warning():
    warning = "We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them.\n"
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
    blocked = (
        "[11-21 12:02:18|CRITICAL|presets.py:55:run_text_guardrail] GUARDRAIL BLOCKED: BLOCKLIST: Prompt: a\n"
    )
    for text, kind in ((oom, "oom"), (blocked, "blocked_by_guardrail")):
        assert classify_failure(exit_code=1, log_text=warning + text, produced_video=False).kind == kind


def test_it_keeps_a_download_that_filled_the_disk_a_disk_problem():
    text = download_failed(GUARDRAIL_ARGV, "OSError: [Errno 28] No space left on device\n")
    failure = classify_failure(exit_code=1, log_text=text, produced_video=False)
    assert failure.kind == "config" and "disk is full" in failure.hint


def test_it_never_repeats_a_token_from_the_command_line():
    token = "hf_" + "aB3" * 12
    argv = T25_ARGV.replace("'--repo-type'", f"'--token', '{token}', '--repo-type'")
    failure = classify(download_failed(argv, ""))
    assert token not in failure.message and token not in failure.hint
    assert "nvidia/Cosmos-Transfer2.5-2B" in failure.hint


def test_it_reads_the_repository_revision_and_file_of_an_hf_download():
    names = download_arguments(ast.literal_eval(T25_ARGV))
    assert (names.repository, names.revision, names.file, names.launcher) == (
        "nvidia/Cosmos-Transfer2.5-2B",
        REVISION,
        PT,
        "uvx",
    )
    assert download_arguments(["python", "download", "x/y"]).repository == ""
