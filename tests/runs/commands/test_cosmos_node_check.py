"""`cosmos_node check NAME [--model MODEL]`: the connection checks, then each model's preflight."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

TOKEN = "hf_checkCommandToken0123456789"
GIB_KIB = 1024**2


def check(*args: str) -> tuple[str, int]:
    out = StringIO()
    try:
        call_command("cosmos_node", "check", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


@pytest.fixture
def node(db, ssh_host, fast_ssh):
    ssh_host.set_sim(disk_free_kib=500 * GIB_KIB, hf_token=TOKEN)
    node = ssh_host.make_node(models=("cosmos3_nano", "reason1"), checked=False)
    node.set_hf_token(TOKEN)
    return node


def test_it_prints_each_check_of_the_model_given_and_passes(node):
    out, code = check(node.name, "--model", "cosmos3_nano")
    assert code == 0, out
    assert "NVIDIA H100" in out  # the connection checks come first
    assert "Cosmos3-Nano (cosmos3_nano) preflight: ready" in out
    for name in ("docker", "image", "driver", "gpu 0", "disk", "token nvidia/Cosmos-Guardrail1"):
        assert re.search(rf"  ✓ {name} +\S", out), name
    assert "Reason" not in out
    assert TOKEN not in out


def test_it_checks_every_model_the_node_offers(node):
    out, code = check(node.name)
    assert code == 0, out
    assert "Cosmos3-Nano (cosmos3_nano) preflight: ready" in out
    assert "(reason1) preflight: ready" in out
    assert "(transfer1)" not in out  # not offered there: no runtime with an image


def test_it_prints_each_problem_with_its_fix_and_fails(node, ssh_host):
    ssh_host.set_sim(driver="535.104.05", hf_refused={"nvidia/Cosmos-Guardrail1": 403})
    out, code = check(node.name, "--model", "cosmos3_nano")
    assert code == 1
    assert "Cosmos3-Nano (cosmos3_nano) preflight: 2 problems" in out
    assert re.search(
        r"✗ driver +NVIDIA driver 535\.104\.05 is older than 570\.124\.06 \(Cosmos3-Nano\)\n", out
    )
    assert "fix: upgrade the driver" in out
    assert "✗ token nvidia/Cosmos-Guardrail1 the token cannot read nvidia/Cosmos-Guardrail1 (403)\n" in out
    assert (
        "fix: accept its licence at https://huggingface.co/nvidia/Cosmos-Guardrail1 with the token's account"
        in out
    )
    assert f"node {node.name} cannot run Cosmos3-Nano (2 problems) yet" in out
