"""Real SSH "GPU nodes" on this machine, for tests.

``SshTestHost`` runs a real OpenSSH sshd on loopback; ``NetnsTestHost`` runs one inside its own network
namespace, so its link can be cut. Sessions on either get a PATH that starts with a per-host folder of
shims standing in for the GPU host's tools:

- ``docker``: ``docker run`` accepts exactly the options ``cosmos.launch.docker_argv`` emits and runs
  the Cosmos stand-in (the standin package) as the "container", in its own session, with a clean
  environment; ``docker kill``, ``docker ps``, ``docker version`` and ``docker image inspect`` answer as
  docker 28 does for the calls we make.
- ``nvidia-smi``: the ``--query-gpu`` CSV and ``-L`` list of the configured number of H100s, busy while a
  container that was given them is alive.

The shims are tiny launchers that load this file and call ``shim_main``; their settings are in a JSON file
next to them (``set_sim``), and the containers they start are recorded in the host's state folder
(``containers``). This module imports only the standard library at the top, because every shim call
imports it; paramiko is imported inside ``SshTestHost.connect``.

How PATH reaches the sessions: sshd's ``SetEnv PATH=<shims>:<system path> SHLVL=1``. ``SetEnv`` alone is
not enough here: Debian's bash, started by sshd for ``sh -c <command>``, sources /root/.bashrc even when it
is not interactive (it checks SSH_CLIENT), and this machine's /root/.bashrc prepends pyenv and cargo to
PATH. bash does that only for a top-level shell, so ``SHLVL=1`` (bash then counts itself as level 2) turns
it off without touching /root. The same ``SetEnv`` also marks every process started through the host with
``COSMOS_TEST_HOST=<marker>``, which is how ``kill_processes`` finds what a test left running.
"""

import base64
import contextlib
import csv
import ctypes
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()
STANDIN = HERE.parents[1] / "standin"  # the package folder: python runs it
SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
DEFAULT_IMAGE = "cosmos-transfer1:test"
DOCKER_VERSION = "28.2.2"
GPU_NAME = "NVIDIA H100 80GB HBM3"
GPU_MEMORY_MIB = 81559
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINER_PATH = "/usr/local/nvidia/bin:/usr/local/cuda/bin:" + SYSTEM_PATH
MARKER_VARIABLE = "COSMOS_TEST_HOST"
SIM_DEFAULTS = {"time_scale": 0.001, "resolution_scale": 0.1, "fail": "none", "launch_log": None, "gpus": 2}
NETNS_PREFIX = "cosmos-t"
NETNS_LOCK_DIR = Path("/run/cosmos-test-netns")
NETNS_SUBNET = "10.231"
NETNS_INDEXES = range(1, 250)

_PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------------------------------------- keys


def generate_key(path: Path, *, comment: str = "cosmos-test") -> Path:
    """A new ed25519 key pair without passphrase at ``path`` and ``path.pub``; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, public_key_path(path)):
        old.unlink(missing_ok=True)
    command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return path


def public_key_path(private_key: Path) -> Path:
    return Path(f"{private_key}.pub")


def public_key(private_key: Path) -> str:
    """``"ssh-ed25519 AAAA…"`` of a key pair: type and base64 only, without the comment."""
    kind, blob = public_key_path(private_key).read_text().split()[:2]
    return f"{kind} {blob}"


def fingerprint(public_key_text: str) -> str:
    """OpenSSH's ``SHA256:<base64 without padding>`` fingerprint of ``"type base64 [comment]"``."""
    blob = base64.b64decode(public_key_text.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------- processes


def process_stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, parent pid, start time in clock ticks) of a process, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def is_running(pid: int | None, starttime: int | None = None) -> bool:
    """True while the process exists and is not a zombie (this VM's init reaps orphans only after ~1 s).

    With ``starttime`` a reused pid does not count.
    """
    if not pid:
        return False
    stat = process_stat(pid)
    return stat is not None and stat[0] not in "ZXx" and (starttime is None or stat[2] == starttime)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(pid: int) -> list[list[int]]:
    """The live processes below ``pid`` (by parent pid), level by level: children, grandchildren, …"""
    children: dict[int, list[int]] = {}
    for other in _all_pids():
        stat = process_stat(other)
        if stat and stat[0] not in "ZXx":
            children.setdefault(stat[1], []).append(other)
    levels, level = [], children.get(pid, [])
    while level:
        levels.append(level)
        level = [child for parent in level for child in children.get(parent, [])]
    return levels


def kill_tree(pid: int) -> None:
    """SIGKILL everything below ``pid``, deepest first, so each parent still lives to reap its children.

    An orphan would otherwise stay a zombie until this VM's init reaps it, about a second later.
    """
    for level in reversed(descendants(pid)):
        kill_all(level)
        deadline = time.monotonic() + 0.5
        while any(os.path.exists(f"/proc/{child}") for child in level) and time.monotonic() < deadline:
            time.sleep(0.01)


def pids_with_marker(marker: str) -> list[int]:
    """Live processes whose environment holds ``COSMOS_TEST_HOST=<marker>``."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environment.split(b"\0") and is_running(pid):
            found.append(pid)
    return found


def kill_all(pids, *, timeout: float = 3.0) -> None:
    """SIGKILL these processes and wait until none is running (zombies count as gone)."""
    pids = [pid for pid in pids if pid != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (a crashed pytest)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# ---------------------------------------------------------------------------------------------- network


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def ssh_banner(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True when an SSH server answers on host:port with its version banner."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return connection.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)


# ---------------------------------------------------------------------------------------------- hosts

SHIM_LAUNCHER = """#!{python} -I
# {name} shim of a Cosmos test GPU host, written by tests/hosts.py. Settings: {config}
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("cosmos_test_host_shims", {module!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.exit(module.shim_main({name!r}, {config!r}, sys.argv[1:]))
"""


class SshTestHost:
    """A real sshd on loopback that looks like a GPU node: docker and nvidia-smi shims on its PATH.

    Everything it owns lives under ``base``: keys, sshd config and log, the shim folder (``shim_dir``,
    with ``sim.json``) and the container records (``state_dir``). ``root`` is the node's working folder,
    ``base/root`` until ``reset`` moves it.
    """

    username = "root"

    def __init__(self, base: Path, *, host: str = "127.0.0.1", port: int | None = None, image=DEFAULT_IMAGE):
        self.base = Path(base).resolve()
        if re.search(r"[\s\"'\\]", str(self.base)):
            raise ValueError(f"the test host folder must not contain spaces or quotes: {self.base}")
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.image = image
        self.root = self.base / "root"
        self.shim_dir = self.base / "bin"
        self.state_dir = self.base / "containers"
        self.config_path = self.shim_dir / "sim.json"
        self.sshd_config = self.base / "sshd_config"
        self.log_path = self.base / "sshd.log"
        self.pid_file = self.base / "sshd.pid"
        self.authorized_keys = self.base / "authorized_keys"
        self.host_key = self.base / "host_ed25519"
        self.client_key = self.base / "client_ed25519"
        self.marker = secrets.token_hex(8)
        self._process: subprocess.Popen | None = None
        self._names = 0
        for folder in (self.base, self.root, self.shim_dir, self.state_dir):
            folder.mkdir(parents=True, exist_ok=True)
        generate_key(self.host_key, comment="cosmos-test-host")
        generate_key(self.client_key, comment="cosmos-test-client")
        self.authorized_keys.write_text(public_key(self.client_key) + "\n")
        self.authorized_keys.chmod(0o600)
        self.host_public_key = public_key(self.host_key)
        self.host_fingerprint = fingerprint(self.host_public_key)
        self._sim = {
            **SIM_DEFAULTS,
            "image": image,
            "python": sys.executable,
            "standin": str(STANDIN),
            "state_dir": str(self.state_dir),
            "marker": self.marker,
        }
        _write_json(self.config_path, self._sim)
        for name in ("docker", "nvidia-smi"):
            shim = self.shim_dir / name
            shim.write_text(
                SHIM_LAUNCHER.format(
                    python=sys.executable, name=name, config=str(self.config_path), module=str(HERE)
                )
            )
            shim.chmod(0o755)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.username}@{self.host}:{self.port} root={self.root} {state}>"

    # -------------------------------------------------------------------------------- sshd

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def session_path(self) -> str:
        """The PATH every SSH session starts with: the shims first."""
        return f"{self.shim_dir}:{SYSTEM_PATH}"

    def known_hosts_line(self) -> str:
        """The OpenSSH known_hosts entry that pins this host's key."""
        address = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{address} {self.host_public_key}"

    def _sshd_config_text(self) -> str:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.pid_file}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "MaxStartups 100",
            "MaxSessions 50",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            f"SetEnv PATH={self.session_path} SHLVL=1 {MARKER_VARIABLE}={self.marker}",
        ]
        if _sshd_version() >= (9, 8):
            lines.append("PerSourcePenalties no")  # 9.8+ would lock out 127.0.0.1 after refused test logins
        return "\n".join(lines) + "\n"

    def _sshd_command(self) -> list[str]:
        return [SSHD, "-D", "-f", str(self.sshd_config), "-E", str(self.log_path)]

    def start(self) -> "SshTestHost":
        """Start sshd (in the foreground, as our child) and wait until it answers on its port."""
        if self.running:
            return self
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else 5
        for attempt in range(attempts):
            self.port = self._fixed_port or free_port(self.host)
            self.sshd_config.write_text(self._sshd_config_text())
            check = _run([SSHD, "-t", "-f", str(self.sshd_config)])
            if check.returncode:
                raise RuntimeError(f"sshd rejects {self.sshd_config}: {check.stderr.strip()}")
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    self._sshd_command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._process.poll() is None:
                if ssh_banner(self.host, self.port):
                    return self
                time.sleep(0.02)
            self._stop_sshd()
            log = self.log_text()[log_start:]
            if "Address already in use" in log and attempt + 1 < attempts:
                continue  # another process took the free port first
            raise RuntimeError(f"sshd did not come up on {self.host}:{self.port}:\n{log}")
        raise AssertionError("unreachable")

    def _stop_sshd(self) -> None:
        if self._process is None:
            return
        kill_tree(self._process.pid)  # per-connection sshd processes and their sessions
        self._process.kill()
        self._process.wait(timeout=5)
        self._process = None

    def stop(self) -> None:
        """Stop sshd, its connections and everything started through it."""
        self._stop_sshd()
        self.kill_processes()

    def log_text(self) -> str:
        """sshd's log, for debugging a failed test."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -------------------------------------------------------------------------------- per test

    def reset(self, root: Path) -> "SshTestHost":
        """Ready for the next test: kill what the last one left, default shim settings, a fresh ``root``."""
        self.kill_processes()
        for record in self.state_dir.glob("*.json"):
            record.unlink(missing_ok=True)
        self.reset_sim()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def kill_processes(self) -> None:
        """SIGKILL every container and every process started through an SSH session of this host."""
        pids = [container["pid"] for container in self.containers()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for _ in range(3):  # a shell may start another process while we kill its siblings
            found = pids_with_marker(self.marker)
            if not found:
                break
            kill_all(found)
        kill_all(pids)

    def node_fields(self, **overrides) -> dict:
        """Keyword arguments for ``nodes.models.GpuNode`` describing this host (docker launcher)."""
        self._names += 1
        fields = {
            "name": f"test-gpu-{self.port}-{self._names}-{secrets.token_hex(2)}",
            "transport": "ssh",
            "launcher": "docker",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "key_path": str(self.client_key),
            "host_key": self.host_public_key,
            "remote_root": str(self.root),
            "python": sys.executable,
        }
        fields.update(overrides)
        return fields

    def make_node(self, *, image: str | None = None, models: tuple[str, ...] | None = None, **overrides):
        """A saved node for this host whose runtimes run ``models`` (default: all) from ``image``."""
        from cosmos.profiles import PROFILES
        from nodes.models import GpuNode, NodeRuntime

        node = GpuNode.objects.create(**self.node_fields(**overrides))
        image = self.image if image is None else image
        NodeRuntime.objects.bulk_create(
            NodeRuntime(node=node, model_type=model, docker_image=image) for model in (models or PROFILES)
        )
        return node

    def connect(self, *, key_path: Path | None = None, timeout: float = 5.0):
        """A paramiko SSHClient logged in as root, trusting only this host's key (RejectPolicy)."""
        import paramiko

        client = paramiko.SSHClient()
        kind, blob = self.host_public_key.split()
        address = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        client.get_host_keys().add(
            address, kind, paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
        )
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else each new channel waits ~40 ms
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                key_filename=str(key_path or self.client_key),
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                sock=sock,
            )
        except BaseException:
            client.close()
            sock.close()
            raise
        return client

    # -------------------------------------------------------------------------------- shims

    def set_sim(
        self, *, time_scale=None, resolution_scale=None, fail=None, launch_log=None, gpus=None
    ) -> None:
        """Change the shims' settings; None leaves a setting as it is (``reset_sim`` restores defaults).

        time_scale, resolution_scale and fail go to the stand-in's flags (fail "none" = no failure);
        launch_log becomes COSMOS_SIM_LAUNCH_LOG in the container ("" turns it off); gpus is the number
        of GPUs nvidia-smi lists and ``docker run --gpus`` may use.
        """
        if time_scale is not None:
            self._sim["time_scale"] = float(time_scale)
        if resolution_scale is not None:
            self._sim["resolution_scale"] = float(resolution_scale)
        if fail is not None:
            self._sim["fail"] = str(fail)
        if launch_log is not None:
            self._sim["launch_log"] = str(launch_log) or None
        if gpus is not None:
            self._sim["gpus"] = int(gpus)
        _write_json(self.config_path, self._sim)

    def reset_sim(self) -> None:
        self._sim.update(SIM_DEFAULTS)
        _write_json(self.config_path, self._sim)

    @property
    def sim(self) -> dict:
        """The shims' current settings."""
        return dict(self._sim)

    def containers(self) -> list[dict]:
        """The live containers the docker shim started: name, id, labels, pid, devices, image, rm."""
        return [record for record in _container_records(self.state_dir) if _container_running(record)]


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no ``ip``, or no CAP_SYS_ADMIN)."""


def netns_unavailable_reason() -> str | None:
    """Why NetnsTestHost cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "network-namespace test hosts need root"
    try:
        listing = _run(["ip", "netns", "list"])
    except FileNotFoundError:
        return "network-namespace test hosts need iproute2 (`ip`)"
    if listing.returncode:
        return f"`ip netns` does not work here: {listing.stderr.strip()}"
    return None


class NetnsTestHost(SshTestHost):
    """The same host inside its own network namespace, reached over a veth pair, so its link can be cut.

    Namespace ``cosmos-t<N>``, veth ``ct<N>h`` (our side, 10.231.<N>.1/24) and ``ct<N>n`` (its side,
    10.231.<N>.2/24, where sshd listens on port 22). N is claimed with a lock file in
    /run/cosmos-test-netns, so parallel test sessions never share one and a namespace left by a crashed
    run (its lock is free) is cleaned up before reuse. Only the network is isolated: the filesystem and
    the pid space are shared with this machine.
    """

    def __init__(self, base: Path, *, image=DEFAULT_IMAGE):
        super().__init__(base, host="", port=22, image=image)  # host: the namespace's address, from start()
        self.index: int | None = None
        self._lock = None

    @property
    def namespace(self) -> str:
        return f"{NETNS_PREFIX}{self.index}"

    @property
    def host_interface(self) -> str:
        return f"ct{self.index}h"

    @property
    def namespace_interface(self) -> str:
        return f"ct{self.index}n"

    def _sshd_command(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *super()._sshd_command()]

    def _ip(self, *args: str, namespace: bool = False, error=RuntimeError) -> None:
        command = ["ip", *(["-n", self.namespace] if namespace else []), *args]
        result = _run(command)
        if result.returncode:
            raise error(f"`{shlex.join(command)}` failed: {result.stderr.strip()}")

    def _claim_index(self) -> None:
        NETNS_LOCK_DIR.mkdir(parents=True, exist_ok=True)
        for index in NETNS_INDEXES:
            lock = open(NETNS_LOCK_DIR / f"{NETNS_PREFIX}{index}.lock", "w")  # noqa: SIM115 (held until stop)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self.index, self._lock = index, lock
            self._remove_namespace()  # a leftover of a crashed run: its owner's lock is gone
            addresses = _run(["ip", "-4", "-o", "addr", "show"]).stdout
            if f" {NETNS_SUBNET}.{index}." in addresses:  # the subnet belongs to someone else
                self._release_index()
                continue
            return
        raise NetnsUnavailable(f"no free {NETNS_PREFIX}<N> namespace in {NETNS_LOCK_DIR}")

    def _release_index(self) -> None:
        if self._lock is not None:
            self._lock.close()
        self.index, self._lock = None, None

    def _remove_namespace(self) -> None:
        if self.index is None:
            return
        pids = _run(["ip", "netns", "pids", self.namespace]).stdout.split()
        kill_all(int(pid) for pid in pids)
        _run(["ip", "netns", "del", self.namespace])  # the veth pair goes with it
        _run(["ip", "link", "del", self.host_interface])  # half-made pair of a crash before the move

    def start(self) -> "NetnsTestHost":
        if self.running:
            return self
        if reason := netns_unavailable_reason():
            raise NetnsUnavailable(reason)
        self._claim_index()
        try:
            subnet = f"{NETNS_SUBNET}.{self.index}"
            self._ip("netns", "add", self.namespace, error=NetnsUnavailable)  # e.g. no CAP_SYS_ADMIN
            self._ip(
                "link", "add", self.host_interface, "type", "veth", "peer", "name", self.namespace_interface
            )
            self._ip("link", "set", self.namespace_interface, "netns", self.namespace)
            self._ip("addr", "add", f"{subnet}.1/24", "dev", self.host_interface)
            self._ip("link", "set", self.host_interface, "up")
            self._ip("addr", "add", f"{subnet}.2/24", "dev", self.namespace_interface, namespace=True)
            self._ip("link", "set", self.namespace_interface, "up", namespace=True)
            self._ip("link", "set", "lo", "up", namespace=True)
            self.host = f"{subnet}.2"
            super().start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill sshd and everything in the namespace, delete the namespace (and veth), free the index."""
        super().stop()
        self._remove_namespace()
        self._release_index()

    def cut(self) -> None:
        """Take the host's side of the link down: packets to and from it are dropped, nothing is refused."""
        self._ip("link", "set", self.namespace_interface, "down", namespace=True)

    def restore(self, *, timeout: float = 10.0) -> None:
        """Bring the link back up and wait until sshd answers again."""
        self._ip("link", "set", self.namespace_interface, "up", namespace=True)
        deadline = time.monotonic() + timeout
        while not ssh_banner(self.host, self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.host}:{self.port} did not answer after restore()")
            time.sleep(0.05)


_SSHD_VERSION: tuple[int, int] | None = None


def _sshd_version() -> tuple[int, int]:
    global _SSHD_VERSION
    if _SSHD_VERSION is None:
        output = _run([SSHD, "-V"]).stderr
        match = re.search(r"OpenSSH_(\d+)\.(\d+)", output)
        _SSHD_VERSION = (int(match[1]), int(match[2])) if match else (0, 0)
    return _SSHD_VERSION


# ---------------------------------------------------------------------------------------------- shims
# Everything below runs inside the shim processes on the "GPU host" (started through SSH sessions).


class ShimExit(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message, self.code = message, code


def shim_main(name: str, config_path: str, args: list[str]) -> int:
    config = json.loads(Path(config_path).read_text())
    handler = {"docker": _docker, "nvidia-smi": _nvidia_smi}[name]
    try:
        return handler(config, args)
    except ShimExit as exc:
        if exc.message:
            print(exc.message, file=sys.stderr, flush=True)
        return exc.code


def _container_records(state_dir) -> list[dict]:
    records = []
    for path in sorted(Path(state_dir).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text()))
    return records


def _container_running(record: dict) -> bool:
    return record.get("exit_code") is None and is_running(record.get("pid"), record.get("starttime"))


def _prune(state_dir: Path) -> None:
    """Forget --rm containers that are gone (their docker CLI was killed, so nobody removed them)."""
    for record in _container_records(state_dir):
        if not record.get("rm") or record.get("exit_code") is not None:
            continue
        unstarted = record.get("pid") is None and not is_running(record.get("shim_pid"))
        if unstarted or (record.get("pid") is not None and not _container_running(record)):
            (state_dir / f"{record['name']}.json").unlink(missing_ok=True)


def _find_container(state_dir: Path, reference: str) -> dict | None:
    records = [record for record in _container_records(state_dir) if record.get("pid") is not None]
    for record in records:
        if reference in (record["name"], record["id"]):
            return record
    by_prefix = [record for record in records if record["id"].startswith(reference)]
    return by_prefix[0] if len(by_prefix) == 1 else None


def _docker(config: dict, args: list[str]) -> int:
    commands = {
        "run": _docker_run,
        "kill": _docker_kill,
        "ps": _docker_ps,
        "version": _docker_version,
        "image": _docker_image,
    }
    if not args or args[0] not in commands:
        command = args[0] if args else ""
        raise ShimExit(
            f"docker: '{command}' is not a docker command (test shim: only {', '.join(commands)}).\n"
            "See 'docker --help'",
            1,
        )
    state_dir = Path(config["state_dir"])
    _prune(state_dir)
    return commands[args[0]](config, args[1:])


def _parse_flags(command: str, args: list[str], *, values: set[str], switches: set[str], code: int = 125):
    """pflag-style options up to the first non-option: returns ([(flag, value)], rest)."""
    parsed, index = [], 0
    while index < len(args) and args[index].startswith("-") and args[index] != "-":
        arg = args[index]
        name, has_inline, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in switches and not has_inline:
            parsed.append((name, True))
        elif name in values:
            if not has_inline:
                index += 1
                if index >= len(args):
                    raise ShimExit(
                        f"docker: flag needs an argument: {name}\nSee 'docker {command} --help'.", code
                    )
                inline = args[index]
            parsed.append((name, inline))
        else:
            kind = (
                f"unknown flag: {name}"
                if arg.startswith("--")
                else f"unknown shorthand flag: {arg[1:2]!r} in {arg}"
            )
            raise ShimExit(
                f"docker: {kind}\nSee 'docker {command} --help'.\n"
                "(test shim: it accepts only the options cosmos.launch.docker_argv emits)",
                code,
            )
        index += 1
    return parsed, args[index:]


def _parse_gpus(value: str, available: int) -> list[str]:
    """docker's --gpus, read as CSV as docker does: "device=0,1" needs its quotes, or the ",1" is a count."""
    bad = f'docker: invalid argument "{value}" for "--gpus" flag: '
    see = "\nSee 'docker run --help'."
    if '"' in value and not value.startswith('"'):
        raise ShimExit(
            bad
            + f'parse error on line 1, column {value.index(chr(34)) + 1}: bare " in non-quoted-field'
            + see,
            125,
        )
    try:
        fields = next(csv.reader([value], strict=True), [])
    except csv.Error as exc:
        raise ShimExit(bad + str(exc) + see, 125) from None
    seen: set[str] = set()
    count: int | None = None
    device_ids: list[str] | None = None

    def parse_count(text: str) -> int:
        if text == "all":
            return available
        if not text.lstrip("-").isdigit():
            raise ShimExit(
                bad + f'invalid count ({text}): strconv.Atoi: parsing "{text}": invalid syntax' + see, 125
            )
        return int(text)

    for field in fields:
        key, has_value, setting = field.partition("=")
        if key in seen:
            raise ShimExit(bad + f"gpu request key '{key}' can be specified only once" + see, 125)
        seen.add(key)
        if not has_value:
            seen.add("count")
            count = parse_count(key)
        elif key == "count":
            count = parse_count(setting)
        elif key == "device":
            device_ids = setting.split(",")
        elif key not in ("driver", "capabilities", "options"):
            raise ShimExit(bad + f"unexpected key '{key}' in '{field}'" + see, 125)
    if count is not None and device_ids is not None:
        raise ShimExit(
            "docker: Error response from daemon: cannot set both Count and DeviceIDs on device request.", 125
        )
    if device_ids is None:
        device_ids = [str(index) for index in range(1 if count is None else count)]
    for device in device_ids:
        if not device.isdigit() or int(device) >= available:
            raise ShimExit(
                "docker: Error response from daemon: failed to create task for container: failed to create "
                "shim task: OCI runtime create failed: runc create failed: unable to start container process: "
                "error during container init: error running prestart hook #0: exit status 1, stdout: , "
                f"stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: device error: {device}: "
                "unknown device: unknown.",
                125,
            )
    return device_ids


TORCHRUN_OPTIONS = {
    "--nproc_per_node": r"[1-9]\d*",
    "--nnodes": "1",
    "--node_rank": "0",
    "--master_port": r"\d+",
}


def _parse_torchrun(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """torchrun --nproc_per_node=N --nnodes=1 --node_rank=0 --master_port=P <script> <args>."""
    options, index = {}, 0
    usage = "usage: torchrun [-h] [--nnodes NNODES] [--nproc_per_node NPROC_PER_NODE] ... training_script ..."
    while index < len(args) and args[index].startswith("--"):
        name, _, value = args[index].partition("=")
        pattern = TORCHRUN_OPTIONS.get(name)
        if pattern is None or name in options or not re.fullmatch(pattern, value):
            raise ShimExit(
                f"{usage}\ntorchrun: error: unexpected argument {args[index]!r} "
                f"(test shim: expects {' '.join(f'{key}=…' for key in TORCHRUN_OPTIONS)})",
                2,
            )
        options[name] = value
        index += 1
    missing = [name for name in TORCHRUN_OPTIONS if name not in options]
    if missing or index >= len(args):
        what = (
            f"missing {', '.join(missing)}"
            if missing
            else "the following arguments are required: training_script"
        )
        raise ShimExit(f"{usage}\ntorchrun: error: {what}", 2)
    return options, args[index:]


def _docker_run(config: dict, args: list[str]) -> int:
    values = {"--name", "--label", "--gpus", "--ipc", "-v", "-w", "-e"}
    flags, rest = _parse_flags("run", args, values=values, switches={"--rm"})
    if not rest:
        raise ShimExit("docker: 'docker run' requires at least 1 argument.\nSee 'docker run --help'.", 125)
    image, command = rest[0], rest[1:]
    options: dict = {"rm": False, "name": None, "labels": {}, "devices": [], "environment": {}, "mounts": []}
    for flag, value in flags:
        if flag == "--rm":
            options["rm"] = True
        elif flag == "--name":
            if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", value):
                raise ShimExit(
                    f"docker: Error response from daemon: Invalid container name ({value}), only "
                    "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.",
                    125,
                )
            options["name"] = value
        elif flag == "--label":
            key, _, label = value.partition("=")
            options["labels"][key] = label
        elif flag == "--gpus":
            options["devices"] = _parse_gpus(value, int(config["gpus"]))
        elif flag == "--ipc":
            if value not in ("", "none", "private", "shareable", "host") and not value.startswith(
                "container:"
            ):
                raise ShimExit(f"docker: Error response from daemon: invalid IPC mode: {value}.", 125)
        elif flag == "-v":
            parts = value.split(":")
            if len(parts) not in (2, 3) or not parts[1].startswith("/"):
                raise ShimExit(
                    f"docker: Error response from daemon: invalid volume specification: '{value}'.", 125
                )
            if parts[0].startswith("/"):
                Path(parts[0]).mkdir(parents=True, exist_ok=True)  # docker creates a missing bind source
                options["mounts"].append((parts[0], parts[1]))
        elif flag == "-w":
            if not value.startswith("/"):
                raise ShimExit(
                    f"docker: Error response from daemon: the working directory '{value}' is invalid, it "
                    "needs to be an absolute path.",
                    125,
                )
        elif flag == "-e":
            key, has_value, setting = value.partition("=")
            if has_value:
                options["environment"][key] = setting
            elif key in os.environ:
                options["environment"][key] = os.environ[key]
    wanted = config["image"] if ":" in config["image"] else f"{config['image']}:latest"
    if (image if ":" in image else f"{image}:latest") != wanted:
        raise ShimExit(
            f"Unable to find image '{image}' locally\ndocker: Error response from daemon: pull access denied "
            f"for {image.split(':')[0]}, repository does not exist or may require 'docker login': denied: "
            "requested access to the resource is denied.\nSee 'docker run --help'.",
            125,
        )
    if not command:
        raise ShimExit("docker: Error response from daemon: No command specified.", 125)
    if command[0] in ("python", "python3"):
        # A one-process model (Cosmos 3 Nano on one GPU: python -m cosmos_framework.scripts.inference).
        return _run_container(config, options, image, None, command[1:])
    if command[0] != "torchrun":
        raise ShimExit(
            "docker: Error response from daemon: failed to create task for container: failed to create shim "
            "task: OCI runtime create failed: runc create failed: unable to start container process: exec: "
            f'"{command[0]}": executable file not found in $PATH: unknown.',
            127,
        )
    torchrun, script = _parse_torchrun(command[1:])
    processes = int(torchrun["--nproc_per_node"])
    if processes > len(options["devices"]):
        raise ShimExit(
            f"[rank{len(options['devices'])}]: torch.AcceleratorError: CUDA error: invalid device ordinal "
            f"(test shim: --nproc_per_node={processes} but the container sees {len(options['devices'])} GPUs)",
            1,
        )
    return _run_container(config, options, image, torchrun, script)


def _host_path(value: str, mounts: list[tuple[str, str]]) -> str:
    """A container path in an environment variable (HF_HOME=/root/.cache/huggingface) as the host's.

    The shim runs the "container" on the host, where only the job's own folder is at the same
    path; without this, a model would write into /workspace on the test machine.
    """
    for source, target in mounts:
        if source != target and (value == target or value.startswith(target.rstrip("/") + "/")):
            return source + value[len(target.rstrip("/")) :]
    return value


def _run_container(config: dict, options: dict, image: str, torchrun: dict | None, script: list[str]) -> int:
    state_dir = Path(config["state_dir"])
    container_id = secrets.token_hex(32)
    name = options["name"] or f"shim_{container_id[:8]}"
    record_path = state_dir / f"{name}.json"
    record = {
        "id": container_id,
        "name": name,
        "image": image,
        "labels": options["labels"],
        "devices": options["devices"],
        "rm": options["rm"],
        "pid": None,
        "starttime": None,
        "shim_pid": os.getpid(),
        "created": time.time(),
        "exit_code": None,
    }
    try:
        with open(record_path, "x") as reservation:  # the name is ours, or in use
            json.dump(record, reservation)
    except FileExistsError:
        other = json.loads(record_path.read_text() or "{}")
        raise ShimExit(
            f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use '
            f'by container "{other.get("id", "")}". You have to remove (or rename) that container to be able '
            "to reuse that name.\nSee 'docker run --help'.",
            125,
        ) from None

    environment = {
        "PATH": CONTAINER_PATH,
        "HOSTNAME": container_id[:12],
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "NVIDIA_VISIBLE_DEVICES": ",".join(options["devices"]),
        MARKER_VARIABLE: config["marker"],  # lets the test host find and kill it
        **(
            {
                "LOCAL_RANK": "0",
                "RANK": "0",
                "LOCAL_WORLD_SIZE": torchrun["--nproc_per_node"],
                "WORLD_SIZE": torchrun["--nproc_per_node"],
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": torchrun["--master_port"],
            }
            if torchrun
            else {}
        ),
        **{key: _host_path(value, options["mounts"]) for key, value in options["environment"].items()},
    }
    if config.get("launch_log"):
        environment["COSMOS_SIM_LAUNCH_LOG"] = config["launch_log"]
    argv = [
        config["python"],
        config["standin"],
        "--time-scale",
        str(config["time_scale"]),
        "--resolution-scale",
        str(config["resolution_scale"]),
    ]
    if config.get("fail") and config["fail"] != "none":
        argv += ["--fail", config["fail"]]
    argv += script

    # docker's sig-proxy: what the CLI receives goes to the container's main process.
    pending: list[int] = []
    container: subprocess.Popen | None = None

    def forward(signum, _frame):
        if container is None:
            pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(container.pid, signum)

    for signum in (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(signum, forward)
    try:
        container = subprocess.Popen(argv, env=environment, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        record_path.unlink(missing_ok=True)
        raise ShimExit(
            f"docker: Error response from daemon: failed to start the container: {exc}", 126
        ) from exc
    stat = process_stat(container.pid)
    record.update(pid=container.pid, starttime=stat[2] if stat else None)
    _write_json(record_path, record)
    for signum in pending:
        forward(signum, None)
    returncode = container.wait()
    code = 128 - returncode if returncode < 0 else returncode
    if options["rm"]:
        record_path.unlink(missing_ok=True)
    else:
        record["exit_code"] = code
        _write_json(record_path, record)
    return code


SIGNAL_NAMES = {name.removeprefix("SIG"): int(value) for name, value in signal.Signals.__members__.items()}


def _docker_kill(config: dict, args: list[str]) -> int:
    flags, names = _parse_flags("kill", args, values={"--signal", "-s"}, switches=set())
    if not names:
        raise ShimExit("docker: 'docker kill' requires at least 1 argument.\nSee 'docker kill --help'.", 1)
    requested = flags[-1][1] if flags else "KILL"
    signum = (
        int(requested) if requested.isdigit() else SIGNAL_NAMES.get(requested.upper().removeprefix("SIG"))
    )
    if not signum:
        raise ShimExit(f"Error response from daemon: Invalid signal: {requested}", 1)
    state_dir, failed = Path(config["state_dir"]), False
    for name in names:
        record = _find_container(state_dir, name)
        if record is None or (record["rm"] and not _container_running(record)):
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
            failed = True
            continue
        if not _container_running(record):
            print(
                f"Error response from daemon: cannot kill container: {name}: container {record['id']} is "
                "not running",
                file=sys.stderr,
            )
            failed = True
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record["pid"], signum)
        if signum == signal.SIGKILL:  # docker returns once a killed container has stopped
            deadline = time.monotonic() + 3
            while _container_running(record) and time.monotonic() < deadline:
                time.sleep(0.01)
            if record["rm"] and not is_running(record["shim_pid"]):
                (state_dir / f"{record['name']}.json").unlink(missing_ok=True)
        print(name, flush=True)
    return 1 if failed else 0


def _docker_ps(config: dict, args: list[str]) -> int:
    flags, rest = _parse_flags(
        "ps",
        args,
        values={"--filter", "-f", "--format"},
        switches={"-q", "--quiet", "-a", "--all", "--no-trunc"},
    )
    if rest:
        raise ShimExit(f"docker: 'docker ps' accepts no arguments.\nSee 'docker ps --help'.\n(got {rest})", 1)
    names = {flag for flag, _ in flags}
    filters: dict[str, list[str]] = {}
    template = None
    for flag, value in flags:
        if flag in ("--filter", "-f"):
            key, has_value, wanted = value.partition("=")
            if not has_value or key not in ("label", "name", "id", "status"):
                raise ShimExit(f"Error response from daemon: invalid filter '{value}'", 1)
            filters.setdefault(key, []).append(wanted)
        elif flag == "--format":
            template = value
    show_all = bool(names & {"-a", "--all"})
    full_ids = "--no-trunc" in names

    def matches(record: dict) -> bool:
        running = _container_running(record)
        if not (running or (show_all and record.get("exit_code") is not None)):
            return False
        tests = {
            "label": lambda wanted: (
                record["labels"].get(wanted.partition("=")[0]) == wanted.partition("=")[2]
                if "=" in wanted
                else wanted in record["labels"]
            ),
            "name": lambda wanted: re.search(wanted, record["name"]) is not None,
            "id": lambda wanted: record["id"].startswith(wanted),
            "status": lambda wanted: wanted == ("running" if running else "exited"),
        }
        return all(
            any(tests[key](wanted) for wanted in wanted_values) for key, wanted_values in filters.items()
        )

    found = [record for record in _container_records(Path(config["state_dir"])) if matches(record)]
    found.sort(key=lambda record: -record["created"])
    lines = []
    for record in found:
        short_id = record["id"] if full_ids else record["id"][:12]
        status = "Up" if _container_running(record) else f"Exited ({record['exit_code']})"
        if names & {"-q", "--quiet"}:
            lines.append(short_id)
        elif template is not None:
            fields = {"ID": short_id, "Names": record["name"], "Image": record["image"], "Status": status}

            def fill(match, fields=fields, record=record):
                if match[1]:
                    return record["labels"].get(match[1], "")
                if match[2] in fields:
                    return fields[match[2]]
                raise ShimExit(f"template: unknown field {match[0]} (test shim)", 1)

            lines.append(re.sub(r'\{\{\s*(?:\.Label\s+"([^"]+)"|\.(\w+))\s*\}\}', fill, template))
        else:
            lines.append(f'{short_id}   {record["image"]}   "torchrun"   {status}   {record["name"]}')
    if not names & {"-q", "--quiet"} and template is None:
        lines.insert(0, "CONTAINER ID   IMAGE   COMMAND   STATUS   NAMES")
    for line in lines:
        print(line)
    return 0


def _docker_version(config: dict, args: list[str]) -> int:
    flags, rest = _parse_flags("version", args, values={"--format", "-f"}, switches=set(), code=1)
    if rest:
        raise ShimExit(f"docker: 'docker version' accepts no arguments (got {rest}).", 1)
    template = flags[-1][1] if flags else None
    if template is None:
        print(f"Client:\n Version:           {DOCKER_VERSION}\n\nServer: Docker Engine - Community")
        print(f" Engine:\n  Version:          {DOCKER_VERSION}")
        return 0
    known = {"{{.Server.Version}}": DOCKER_VERSION, "{{.Client.Version}}": DOCKER_VERSION}
    if template.strip() not in known:
        raise ShimExit(f"template: unsupported by the test shim: {template}", 1)
    print(known[template.strip()])
    return 0


def _docker_image(config: dict, args: list[str]) -> int:
    if not args or args[0] != "inspect":
        raise ShimExit(f"docker: 'docker image {' '.join(args)}' is not supported by the test shim.", 1)
    flags, images = _parse_flags("image inspect", args[1:], values={"--format", "-f"}, switches=set(), code=1)
    if not images:
        raise ShimExit("docker: 'docker image inspect' requires at least 1 argument.", 1)
    template = flags[-1][1] if flags else None
    known = config["image"] if ":" in config["image"] else f"{config['image']}:latest"
    image_id = "sha256:" + hashlib.sha256(known.encode()).hexdigest()
    failed, found = False, []
    for image in images:
        if (image if ":" in image else f"{image}:latest") == known or image in (image_id, image_id[7:19]):
            found.append(image)
        else:
            print(f"Error: No such image: {image}", file=sys.stderr)
            failed = True
    for _ in found:
        if template is None:
            print(json.dumps([{"Id": image_id, "RepoTags": [known]}], indent=4))
        elif template.strip() == "{{.Id}}":
            print(image_id)
        else:
            raise ShimExit(f"template: unsupported by the test shim: {template}", 1)
    return 1 if failed else 0


NVIDIA_FIELDS = {
    "index": ("index", None),
    "name": ("name", None),
    "uuid": ("uuid", None),
    "memory.used": ("memory.used [MiB]", "MiB"),
    "memory.total": ("memory.total [MiB]", "MiB"),
    "memory.free": ("memory.free [MiB]", "MiB"),
    "utilization.gpu": ("utilization.gpu [%]", "%"),
    "temperature.gpu": ("temperature.gpu", None),
    "driver_version": ("driver_version", None),
}


def _gpu_rows(config: dict) -> list[dict]:
    busy = set()
    for record in _container_records(Path(config["state_dir"])):
        if _container_running(record):
            busy.update(record.get("devices", []))
    rows = []
    for index in range(int(config["gpus"])):
        used = str(index) in busy
        memory = 71234 if used else 1234
        rows.append(
            {
                "index": index,
                "name": GPU_NAME,
                "uuid": f"GPU-{uuid.UUID(bytes=hashlib.md5(f'{config["marker"]}:{index}'.encode()).digest())}",
                "memory.used": memory,
                "memory.total": GPU_MEMORY_MIB,
                "memory.free": GPU_MEMORY_MIB - memory,
                "utilization.gpu": 98 if used else 0,
                "temperature.gpu": 71 if used else 34,
                "driver_version": "570.133.20",
            }
        )
    return rows


def _nvidia_smi(config: dict, args: list[str]) -> int:
    rows = _gpu_rows(config)
    if args in (["-L"], ["--list-gpus"]):
        for row in rows:
            print(f"GPU {row['index']}: {row['name']} (UUID: {row['uuid']})")
        return 0
    query, output_format, index = None, None, 0
    while index < len(args):
        name, has_value, value = args[index].partition("=")
        if name in ("--query-gpu", "--format") and not has_value and index + 1 < len(args):
            index += 1
            value, has_value = args[index], "="
        if name == "--query-gpu" and has_value:
            query = value
        elif name == "--format" and has_value:
            output_format = value.split(",")
        else:
            print(f"Invalid combination of input arguments. Please run 'nvidia-smi -h' for help. ({args})")
            return 1
        index += 1
    if query is None or not output_format or output_format[0] != "csv":
        print("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")
        return 1
    fields = [field.strip() for field in query.split(",")]
    for field in fields:
        if field not in NVIDIA_FIELDS:
            print(f'Field "{field}" is not a valid field to query.\n')
            return 1
    units = "nounits" not in output_format
    if "noheader" not in output_format:
        print(", ".join(NVIDIA_FIELDS[field][0] for field in fields))
    for row in rows:
        cells = []
        for field in fields:
            unit = NVIDIA_FIELDS[field][1]
            cells.append(f"{row[field]} {unit}" if unit and units else str(row[field]))
        print(", ".join(cells))
    return 0
