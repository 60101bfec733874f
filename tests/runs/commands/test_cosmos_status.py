from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import RunFactory
from tests.hosts import free_port


def test_it_reports_gpus_disk_docker_and_active_runs(db, ssh_node, ssh_host):
    run = RunFactory(node=ssh_node)
    out = StringIO()
    call_command("cosmos_status", ssh_node.name, stdout=out)
    text = out.getvalue()
    assert "reachable    yes" in text and "logged in    yes" in text
    assert "gpu 0" in text and "gpu 1" in text and "NVIDIA H100 80GB HBM3" in text
    assert "GB free of" in text and run.id in text
    ssh_node.refresh_from_db()
    assert ssh_node.gpu_type == "NVIDIA H100 80GB HBM3"  # remembered: ETAs learn per GPU type


def test_it_reports_every_enabled_node_and_fails_when_one_is_unreachable(db, ssh_host, fast_ssh):
    ssh_host.make_node(name="gone", port=free_port())
    out = StringIO()
    with pytest.raises(CommandError, match="not ready: gone") as raised:
        call_command("cosmos_status", stdout=out)
    assert raised.value.returncode == 1
    assert "local-sim" in out.getvalue() and "reachable    no" in out.getvalue()
