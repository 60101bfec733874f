"""Reaching GPU nodes. This package is the only one that talks to nodes (and imports paramiko)."""

from nodes.remote.base import (
    ConnectError,
    JobState,
    LocalStorageError,
    RemoteError,
    RemoteFile,
    TransferCancelled,
    TransferError,
    Transport,
)
from nodes.remote.local import LocalTransport

__all__ = [
    "ConnectError",
    "JobState",
    "LocalStorageError",
    "LocalTransport",
    "RemoteError",
    "RemoteFile",
    "TransferCancelled",
    "TransferError",
    "Transport",
    "transport_for",
]


def transport_for(node) -> Transport:
    if node.transport == "ssh":
        from nodes.remote.ssh import SSHTransport

        return SSHTransport(node)
    return LocalTransport(node)
