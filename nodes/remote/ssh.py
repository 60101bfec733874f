"""The `ssh` transport: GPU nodes reached with OpenSSH's protocol through paramiko.

The nodes/remote/ssh*.py modules are the only ones that import paramiko: ssh_connect.py (the
connection, host keys, retries, commands), ssh_files.py (file transfer), ssh_jobs.py (job
control). This module assembles them into SSHTransport and is what the rest of the code imports.
"""

import paramiko

from nodes.remote.base import ConnectError
from nodes.remote.ssh_connect import (
    TRANSIENT,
    AuthenticationError,
    HostKeyError,
    _describe,
    fetch_host_key,
    fingerprint,
    host_key_line,
    parse_host_key,
    parse_jump,
)
from nodes.remote.ssh_files import SSHFiles
from nodes.remote.ssh_jobs import SSHJobs

__all__ = [
    "AuthenticationError",
    "HostKeyError",
    "SSHTransport",
    "fetch_host_key",
    "fetch_host_key_via",
    "fingerprint",
    "host_key_line",
    "parse_host_key",
    "parse_jump",
]


class SSHTransport(SSHFiles, SSHJobs):
    """A GPU node reached over SSH: files over SFTP, jobs started detached, their log followed."""


def fetch_host_key_via(*, jump: str, jump_key: str, key_path: str, host: str, port: int) -> paramiko.PKey:
    """The key a server presents, reached through a bastion whose own key is pinned."""
    from nodes.models import GpuNode

    user, jump_host, jump_port = parse_jump(jump)
    bastion = SSHTransport(
        GpuNode(
            name="bastion",
            transport="ssh",
            host=jump_host,
            port=jump_port,
            username=user,
            key_path=key_path,
            host_key=jump_key,
        )
    )
    try:
        bastion.check_connection()
        channel = (
            bastion._connect()
            .get_transport()
            .open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=bastion.connect_timeout)
        )
        return fetch_host_key(host, port, sock=channel)
    except TRANSIENT as exc:
        raise ConnectError(f"cannot reach {host}:{port} through {jump}: {_describe(exc)}") from exc
    finally:
        bastion.close()
