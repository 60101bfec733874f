import json
import os
import re
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from nodes.models import GpuNode
from tests.factories import RunFactory
from tests.hosts import generate_key


def cosmos_node(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_node", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def add_args(ssh_host, name: str = "h100-a", *extra: str) -> list[str]:
    return [
        "add",
        name,
        *("--host", ssh_host.host, "--port", str(ssh_host.port), "--user", "root"),
        *("--key", str(ssh_host.client_key), "--remote-root", str(ssh_host.root)),
        *("--image", ssh_host.image, "--gpus", "2"),
        *extra,
    ]


def test_it_adds_a_node_whose_host_key_is_confirmed(db, ssh_host, fast_ssh):
    out = cosmos_node(*add_args(ssh_host, "h100-a", "--trust-host-key", ssh_host.host_fingerprint))
    assert ssh_host.host_fingerprint in out and "Added node h100-a" in out
    node = GpuNode.objects.get(name="h100-a")
    assert node.host_key == ssh_host.host_public_key
    assert (node.transport, node.port, node.gpu_count) == ("ssh", ssh_host.port, 2)
    # --image is every model's image until a model is given its own
    assert set(node.runtimes.values_list("docker_image", flat=True)) == {ssh_host.image}
    assert node.offers("transfer1") and node.offers("cosmos3_nano")


def test_it_records_nothing_without_confirmation(db, ssh_host, fast_ssh, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(
        CommandError, match=re.escape(f"--trust-host-key {ssh_host.host_fingerprint}")
    ) as raised:
        cosmos_node(*add_args(ssh_host))
    assert raised.value.returncode == 2
    assert not GpuNode.objects.filter(name="h100-a").exists()


def test_it_records_nothing_when_the_given_key_differs(db, ssh_host, fast_ssh):
    with pytest.raises(CommandError, match="not the SHA256:wrong given: nothing was recorded"):
        cosmos_node(*add_args(ssh_host, "h100-a", "--trust-host-key", "SHA256:wrong"))
    assert not GpuNode.objects.filter(name="h100-a").exists()


def test_it_asks_interactively(db, ssh_host, fast_ssh, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    cosmos_node(*add_args(ssh_host))
    assert GpuNode.objects.filter(name="h100-a").exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "")
    with pytest.raises(CommandError, match="was not trusted"):
        cosmos_node(*add_args(ssh_host, "h100-b"))


def test_it_does_not_add_a_node_it_cannot_log_in_to(db, ssh_host, fast_ssh, tmp_path):
    stranger = generate_key(tmp_path / "stranger")
    args = add_args(ssh_host, "h100-a", "--trust-host-key", ssh_host.host_fingerprint)
    args[args.index("--key") + 1] = str(stranger)
    with pytest.raises(CommandError, match=r"was not added: .*refused key"):
        cosmos_node(*args)
    assert not GpuNode.objects.filter(name="h100-a").exists()


def test_it_adds_a_node_behind_a_jump_host(db, ssh_host, fast_ssh):
    jump = f"root@{ssh_host.host}:{ssh_host.port}"
    cosmos_node(
        *add_args(ssh_host, "behind", "--jump", jump),
        *("--trust-jump-host-key", ssh_host.host_fingerprint, "--trust-host-key", ssh_host.host_fingerprint),
    )
    node = GpuNode.objects.get(name="behind")
    assert node.jump_host == jump and node.jump_host_key == ssh_host.host_public_key


def test_it_lists_nodes(db, ssh_node):
    rows = json.loads(cosmos_node("list", "--json"))
    by_name = {row["name"]: row for row in rows}
    assert by_name["local-sim"]["address"] == "this machine"
    assert by_name[ssh_node.name]["host_key"].startswith("SHA256:")
    assert ssh_node.name in cosmos_node("list")


@pytest.mark.slow
def test_it_checks_a_node(db, ssh_node, ssh_host):
    # Ready for every model's preflight (test_cosmos_node_check.py): room for checkpoints, a token.
    ssh_host.set_sim(disk_free_kib=1 << 30, hf_token="hf_checkToken")
    ssh_node.set_hf_token("hf_checkToken")
    out = cosmos_node("check", ssh_node.name)
    assert "docker" in out and "28.2.2" in out and "present" in out
    assert "NVIDIA H100" in out and "GB free" in out


def test_it_fails_the_check_of_a_node_missing_its_image(db, ssh_host, fast_ssh):
    node = ssh_host.make_node(image="cosmos:missing")
    with pytest.raises(CommandError) as raised:
        cosmos_node("check", node.name)
    assert raised.value.returncode == 1


def test_it_trusts_a_new_key_after_a_reinstall(db, ssh_host, fast_ssh, tmp_path):
    from tests.hosts import public_key

    node = ssh_host.make_node(host_key=public_key(generate_key(tmp_path / "old")))
    cosmos_node("trust", node.name, "--trust-host-key", ssh_host.host_fingerprint)
    node.refresh_from_db()
    assert node.host_key == ssh_host.host_public_key


def test_it_removes_a_node_unless_runs_are_active_there(db, ssh_node):
    RunFactory(node=ssh_node)
    with pytest.raises(CommandError, match="1 active run"):
        cosmos_node("remove", ssh_node.name)
    cosmos_node("remove", ssh_node.name, "--force")
    assert not GpuNode.objects.filter(pk=ssh_node.pk).exists()


def test_it_rejects_an_unknown_node(db):
    with pytest.raises(CommandError, match="unknown node 'nowhere'"):
        cosmos_node("check", "nowhere")


def cache_file(ssh_host, digest: str, size: int, age_days: float) -> None:
    path = ssh_host.root / "cache" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age_days * 86400
    os.utime(path, (then, then))


def test_it_prunes_the_cache_by_age_then_size_sparing_active_inputs(db, ssh_node, ssh_host):
    old, older, recent, in_use = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    cache_file(ssh_host, old, 1000, 10)
    cache_file(ssh_host, older, 1000, 20)
    cache_file(ssh_host, recent, 3000, 1)
    cache_file(ssh_host, in_use, 3000, 30)
    (ssh_host.root / "cache" / "sha256" / "notes.txt").write_text("not ours")
    RunFactory(node=ssh_node, execution_config={"inputs_sha256": {"color": in_use}})
    out = cosmos_node("prune", ssh_node.name, "--older-than", "15")
    assert "Removed 1 cached input" in out
    remaining = {path.name for path in (ssh_host.root / "cache" / "sha256").iterdir()}
    assert remaining == {old, recent, in_use, "notes.txt"}
    cosmos_node("prune", ssh_node.name, "--max-size", "4000")
    remaining = {path.name for path in (ssh_host.root / "cache" / "sha256").iterdir()}
    assert remaining == {in_use, "notes.txt"}  # least recently used went first; the active input stays


def test_it_explains_a_bad_size(db, ssh_node):
    with pytest.raises(CommandError, match="use a size such as 500M"):
        cosmos_node("prune", ssh_node.name, "--max-size", "lots")
