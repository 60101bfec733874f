"""Fixtures for real SSH test GPU hosts (tests/hosts.py). A plugin: ``pytest_plugins = ["tests.fixtures_hosts"]``.

- ``ssh_test_server`` (session): one started SshTestHost on loopback for the whole test session.
- ``ssh_host``: that host for one test, with a fresh ``root`` under the test's tmp_path, the shims'
  settings at their defaults, and whatever the previous test left running killed.
- ``netns_host``: a NetnsTestHost of its own (its link can be cut), stopped after the test; skipped when
  network namespaces cannot be made here (not root, no ``ip netns``).
"""

import pytest

from tests.hosts import NetnsTestHost, NetnsUnavailable, SshTestHost, netns_unavailable_reason


@pytest.fixture(scope="session")
def ssh_test_server(tmp_path_factory):
    host = SshTestHost(tmp_path_factory.mktemp("ssh-host"))
    host.start()
    yield host
    host.stop()


@pytest.fixture
def ssh_host(ssh_test_server, tmp_path):
    if not ssh_test_server.running:  # a test stopped it, or it died: the next tests still get a host
        ssh_test_server.start()
    yield ssh_test_server.reset(tmp_path / "gpu-node")
    ssh_test_server.kill_processes()


@pytest.fixture
def netns_host(tmp_path):
    if reason := netns_unavailable_reason():
        pytest.skip(reason)
    host = NetnsTestHost(tmp_path / "netns-host")
    try:
        host.start()
    except NetnsUnavailable as exc:
        pytest.skip(f"network-namespace test hosts are unavailable: {exc}")
    host.root = tmp_path / "gpu-node"
    host.root.mkdir(parents=True, exist_ok=True)
    yield host
    host.stop()
