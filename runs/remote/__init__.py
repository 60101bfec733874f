"""Reaching GPU nodes. This package is the only one that talks to nodes (and imports paramiko)."""

from runs.remote.base import ConnectError, JobState, RemoteError, RemoteFile, TransferError, Transport
from runs.remote.local import LocalTransport

__all__ = [
    "ConnectError",
    "JobState",
    "LocalTransport",
    "RemoteError",
    "RemoteFile",
    "TransferError",
    "Transport",
    "transport_for",
]


def transport_for(node) -> Transport:
    if node.transport == "local":
        return LocalTransport(node)
    raise ConnectError(f"node {node.name}: transport {node.transport!r} is not supported by this version")
