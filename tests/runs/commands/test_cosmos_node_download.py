"""`cosmos_node download NAME MODEL`: a model's checkpoints fetched into the node's cache ahead of time,
with progress read from the Hugging Face CLI's output (the stand-in's `hf download` in the test image)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

TOKEN = "hf_downloadCommandToken0123456789"
NANO_REPOS = ("nvidia/Cosmos3-Nano", "nvidia/Cosmos-Guardrail1", "Qwen/Qwen3Guard-Gen-0.6B")


def download(*args: str) -> tuple[str, int]:
    out = StringIO()
    try:
        call_command("cosmos_node", "download", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


def in_cache(cache: Path, repo: str) -> bool:
    return (cache / "hub" / f"models--{repo.replace('/', '--')}" / "refs" / "main").is_file()


@pytest.fixture
def node(db, ssh_host, fast_ssh):
    node = ssh_host.make_node(models=("cosmos3_nano", "transfer1"))
    node.set_hf_token(TOKEN)
    return node


@pytest.mark.slow
def test_it_fetches_each_repository_in_the_image_with_progress(node, ssh_host, tmp_path):
    ssh_host.set_sim(argv_log=str(tmp_path / "argv.jsonl"), time_scale=0.05)
    node.runtimes.filter(model_type="cosmos3_nano").update(env={"HTTPS_PROXY": "http://proxy:3128"})
    out, code = download(node.name, "cosmos3_nano")
    assert code == 0, out
    for repo in NANO_REPOS:
        assert in_cache(Path(node.hf_cache), repo), repo
        assert f"{repo} 100%" in out
    assert "nvidia/Cosmos3-Nano  50%" in out  # a line per ten percent, read from hf's bar
    assert "Cosmos3-Nano is downloaded" in out
    calls = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    runs = [call for call in calls if call["argv"][1] == "run"]
    assert len(runs) == 3
    assert all(ssh_host.image in call["argv"] and "HF_TOKEN" in call["argv"] for call in runs)
    assert all(f"HF_HOME={node.hf_cache}" in call["argv"] for call in runs)
    assert all("HTTPS_PROXY=http://proxy:3128" in call["argv"] for call in runs)  # the runtime's own
    # The gated guardrail came down, so the token reached the container: never through an argv.
    assert all(TOKEN not in call["argv"] and TOKEN not in call["parent"] for call in calls)
    assert not list(Path(node.root).glob(".download-env.*"))  # the env file is gone


@pytest.mark.slow
def test_it_reports_a_repository_the_hub_refuses_without_a_token(node):
    node.set_hf_token("")
    out, code = download(node.name, "cosmos3_nano")
    assert code == 1
    assert "nvidia/Cosmos-Guardrail1 failed (exit 1):" in out
    assert "Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval." in out
    assert "1 of 3 repositories did not download" in out
    assert in_cache(Path(node.hf_cache), "nvidia/Cosmos3-Nano")  # the others came down all the same


@pytest.mark.slow
def test_it_puts_transfer1_checkpoints_in_the_checkpoint_folder(node, ssh_host):
    ssh_host.set_sim(time_scale=0)
    out, code = download(node.name, "transfer1")
    assert code == 0, out
    assert (Path(node.checkpoints) / "nvidia" / "Cosmos-Transfer1-7B").is_dir()
    assert (Path(node.checkpoints) / "meta-llama" / "Llama-Guard-3-8B").is_dir()


def test_it_uses_the_standins_download_on_a_standin_node(fast_sim):
    fast_sim.set_hf_token(TOKEN)
    out, code = download(fast_sim.name, "cosmos3_nano")
    assert code == 0, out
    for repo in NANO_REPOS:
        assert in_cache(Path(fast_sim.hf_cache), repo), repo
        assert f"{repo} 100%" in out


def test_it_refuses_a_model_the_node_has_no_image_for(node):
    with pytest.raises(CommandError, match="has no image for Cosmos3-Super") as raised:
        call_command("cosmos_node", "download", node.name, "cosmos3_super", stdout=StringIO())
    assert raised.value.returncode == 2
