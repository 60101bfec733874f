"""`cosmos_node token NAME`: a node's Hugging Face token from standard input (never an argument), kept encrypted."""

import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from nodes.models import GpuNode
from tests.factories import GpuNodeFactory

TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def cosmos_node_token(*args: str, stdin: str = "") -> str:
    out, err = StringIO(), StringIO()
    call_command("cosmos_node", "token", *args, stdin=StringIO(stdin), stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


@pytest.fixture
def node(db):
    return GpuNodeFactory(name="h100-a")


def test_it_saves_the_first_line_of_standard_input_encrypted(node):
    out = cosmos_node_token("h100-a", stdin=f"{TOKEN}\n")
    assert "Saved the Hugging Face token of node h100-a" in out
    assert TOKEN not in out and TOKEN[:8] not in out and TOKEN[-6:] not in out  # no part of it
    node = GpuNode.objects.get(pk=node.pk)
    assert node.hf_token() == TOKEN and TOKEN not in node.hf_token_encrypted


def test_it_takes_the_token_only_from_standard_input_never_as_an_argument(node):
    with pytest.raises(CommandError):
        call_command("cosmos_node", "token", "h100-a", TOKEN, stdin=StringIO(""), stdout=StringIO())
    assert not GpuNode.objects.get(pk=node.pk).has_hf_token


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "the token is empty"),
        ("\n", "the token is empty"),
        (f"{TOKEN}\nsecond line\n", "alone on one line"),
        ("hf_two words\n", "single word on one line"),
        ("hf_\x07bell\n", "control characters"),
    ],
)
def test_it_refuses_what_cannot_be_a_token_without_showing_it(node, given, problem):
    node.set_hf_token("hf_previous")
    with pytest.raises(CommandError, match=problem) as raised:
        cosmos_node_token("h100-a", stdin=given)
    assert raised.value.returncode == 2
    assert "hf_two" not in str(raised.value) and TOKEN not in str(raised.value)
    assert GpuNode.objects.get(pk=node.pk).hf_token() == "hf_previous"  # the one set stays


def test_it_clears_the_token(node):
    node.set_hf_token(TOKEN)
    assert "Removed the Hugging Face token of node h100-a" in cosmos_node_token("h100-a", "--clear")
    node = GpuNode.objects.get(pk=node.pk)
    assert not node.has_hf_token and node.hf_token_encrypted == ""


def test_it_names_the_known_nodes_for_an_unknown_one(node):
    with pytest.raises(CommandError, match="unknown node 'h100-b'"):
        cosmos_node_token("h100-b", stdin=f"{TOKEN}\n")


def test_it_lists_whether_a_node_has_a_token(node):
    node.set_hf_token(TOKEN)
    out = StringIO()
    call_command("cosmos_node", "list", "--json", stdout=out)
    rows = {row["name"]: row for row in json.loads(out.getvalue())}
    assert rows["h100-a"]["hf_token"] is True and rows["local-sim"]["hf_token"] is False
    assert TOKEN not in out.getvalue()


# A process of its own whose controlling terminal is a new pty (a session leader opening a terminal
# takes it as its own): getpass reads /dev/tty with echo off, as for a person typing. It prints the
# token's digest, never the token.
PROMPTED = """
import hashlib, os, sys
terminal = os.open(sys.argv[1], os.O_RDWR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
import django
django.setup()
from runs.management.node_cli.runtimes import read_token
print("digest", hashlib.sha256(read_token(sys.stdin).encode()).hexdigest(), flush=True)
"""
ROOT = Path(__file__).resolve().parents[3]


def read_until(terminal: int, marker: bytes, *, timeout: float = 30.0) -> bytes:
    """What the terminal shows until ``marker`` appears (select waits for output, with a deadline)."""
    shown, deadline = b"", time.monotonic() + timeout
    while marker not in shown:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the terminal never showed {marker!r}; it showed {shown!r}"
        ready, _, _ = select.select([terminal], [], [], remaining)
        if ready:
            shown += os.read(terminal, 4096)
    return shown


def test_it_asks_for_the_token_on_a_terminal_without_echoing_it():
    terminal, child_end = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", PROMPTED, os.ttyname(child_end)],
        stdin=child_end,
        stdout=child_end,
        stderr=child_end,
        start_new_session=True,
        cwd=ROOT,
    )
    os.close(child_end)
    try:
        screen = read_until(terminal, b"not shown): ")
        os.write(terminal, f"{TOKEN}\n".encode())
        digest = hashlib.sha256(TOKEN.encode()).hexdigest().encode()
        screen += read_until(terminal, digest)
    finally:
        child.kill()  # done, or stuck at a prompt a failed step never answered
        child.wait()
        os.close(terminal)
    assert b"Hugging Face token" in screen
    assert TOKEN.encode() not in screen  # the terminal never echoed what was typed
