"""The SSH transport against a real OpenSSH server on loopback."""

import hashlib
import os
import stat
import time
from pathlib import PurePosixPath

import pytest

from nodes.models import GpuNode
from nodes.remote.base import ConnectError, ThrottledCheck, TransferCancelled
from nodes.remote.jobs import job_script
from nodes.remote.ssh import AuthenticationError, HostKeyError, SSHTransport
from tests.hosts import generate_key, public_key
from tests.nodes.remote.cache_entries import break_cache_entry


@pytest.fixture
def transport(ssh_node):
    transport = SSHTransport(ssh_node)
    yield transport
    transport.close()


def test_it_reuses_one_connection_for_every_operation(transport):
    transport.makedirs(transport.root / "a" / "b")
    client = transport._client
    transport.write_text(transport.root / "a" / "b" / "f.txt", "hello")
    assert transport.read_bytes(transport.root / "a" / "b" / "f.txt") == b"hello"
    assert transport.run_command(["echo", "one two"]).stdout == "one two\n"
    assert transport._client is client


def test_it_quotes_every_argument(transport, tmp_path):
    marker = tmp_path / "pwned"
    result = transport.run_command(["echo", f"$(touch {marker}); `touch {marker}`; 'quoted' \"x\""])
    assert result.stdout == f"$(touch {marker}); `touch {marker}`; 'quoted' \"x\"\n"
    assert not marker.exists()


def test_it_uploads_and_downloads_verified_files(transport, tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    remote = transport.cache_path(digest)
    assert transport.put_file(source, remote, sha256=digest) == source.stat().st_size
    assert transport.sha256_many([remote, transport.root / "missing"]) == {remote: digest}
    back = tmp_path / "out" / "copy.bin"
    assert transport.get_file(remote, back) == source.stat().st_size
    assert back.read_bytes() == source.read_bytes()
    assert not list(back.parent.glob(".*part"))


def test_it_resumes_a_partial_upload(transport, tmp_path, ssh_host):
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 300_000)
    remote = transport.cache_path("f" * 64)
    transport.makedirs(remote.parent)
    (ssh_host.root / "cache" / "sha256" / f"{'f' * 64}.part").write_bytes(b"x" * 200_000)
    assert transport.put_file(source, remote) == 100_000  # only what was missing
    assert transport.sha256(remote) == hashlib.sha256(source.read_bytes()).hexdigest()


def test_it_starts_over_when_a_partial_upload_is_corrupt(transport, tmp_path, ssh_host):
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 300_000)
    remote = transport.cache_path("e" * 64)
    transport.makedirs(remote.parent)
    (ssh_host.root / "cache" / "sha256" / f"{'e' * 64}.part").write_bytes(b"y" * 200_000)
    transport.put_file(source, remote)
    assert transport.sha256(remote) == hashlib.sha256(source.read_bytes()).hexdigest()


def test_it_refuses_a_download_that_does_not_match(transport, tmp_path):
    transport.write_text(transport.root / "out.txt", "real")
    with pytest.raises(Exception, match="does not match its sha256"):
        transport.get_file(transport.root / "out.txt", tmp_path / "out.txt", sha256="0" * 64)
    assert not (tmp_path / "out.txt").exists()


def test_it_lists_and_links_files(transport):
    transport.write_text(transport.root / "out" / "video_0" / "output.mp4", "12")
    transport.write_text(transport.root / "out" / "a.txt", "1")
    assert [(f.path, f.size) for f in transport.list_files(transport.root / "out")] == [
        ("a.txt", 1),
        ("video_0/output.mp4", 2),
    ]
    transport.symlink(transport.root / "out" / "a.txt", transport.root / "link.txt")
    assert transport.read_bytes(transport.root / "link.txt") == b"1"


def test_it_writes_a_secret_file_readable_by_its_owner_only(transport, ssh_host):
    job_dir = transport.run_dir("rs_secret")
    transport.write_text(job_dir / "job.env", "HF_TOKEN=hf_x\n", mode=0o600)
    transport.write_text(job_dir / "plain.txt", "x")
    on_host = ssh_host.root / "runs" / "rs_secret"
    assert stat.S_IMODE((on_host / "job.env").stat().st_mode) == 0o600
    # The server's umask lets others read a plain file: the secret's mode is not that default.
    assert stat.S_IMODE((on_host / "plain.txt").stat().st_mode) & 0o044
    assert (on_host / "job.env").read_text() == "HF_TOKEN=hf_x\n"
    assert sorted(os.listdir(on_host)) == ["job.env", "plain.txt"]  # its private folder is gone


def test_it_clears_what_a_cut_secret_write_left_behind(transport, ssh_host):
    job_dir = transport.run_dir("rs_secret")
    leftover = ssh_host.root / "runs" / "rs_secret" / ".job.env.private"
    leftover.mkdir(parents=True, mode=0o700)
    (leftover / "job.env").write_text("HF_TOKEN=hf_old\n")
    transport.write_text(job_dir / "job.env", "HF_TOKEN=hf_new\n", mode=0o600)
    assert not leftover.exists()
    assert (leftover.parent / "job.env").read_text() == "HF_TOKEN=hf_new\n"


@pytest.mark.slow
def test_it_runs_a_detached_job_and_follows_its_log(transport):
    job_dir = transport.run_dir("rs_sshjob")
    transport.makedirs(job_dir)
    script = job_script(
        job_dir=job_dir,
        argv=["sh", "-c", "for n in 1 2 3; do echo line $n; sleep 0.2; done; exit 5"],
        env={},
        run_id="rs_sshjob",
    )
    transport.launch(job_dir, script)
    assert b"".join(transport.follow(job_dir)) == b"line 1\nline 2\nline 3\n"
    state = transport.job_state(job_dir)
    assert state.exit_code == 5 and not state.alive


def test_it_terminates_a_remote_process_group(transport, ssh_host):
    job_dir = transport.run_dir("rs_sshkill")
    transport.makedirs(job_dir)
    transport.launch(
        job_dir, job_script(job_dir=job_dir, argv=["sh", "-c", "sleep 60 & sleep 60"], env={}, run_id="x")
    )
    assert transport.job_state(job_dir).alive
    assert transport.terminate_job(job_dir, grace=2)
    assert not transport.job_state(job_dir).alive


def test_it_refuses_a_changed_host_key(db, ssh_host, fast_ssh, tmp_path):
    other = generate_key(tmp_path / "other_host_key")
    node = GpuNode(**ssh_host.node_fields(host_key=public_key(other)))
    with pytest.raises(HostKeyError) as raised:
        SSHTransport(node).check_connection()
    message = str(raised.value)
    assert "has changed" in message and ssh_host.host_fingerprint in message
    assert f"cosmos_node trust {node.name} --trust-host-key {ssh_host.host_fingerprint}" in message


def test_it_names_a_refused_key(db, ssh_host, fast_ssh, tmp_path):
    stranger = generate_key(tmp_path / "stranger")
    node = GpuNode(**ssh_host.node_fields(key_path=str(stranger)))
    with pytest.raises(AuthenticationError, match=f"refused key {stranger}"):
        SSHTransport(node).check_connection()
    node.key_path = str(tmp_path / "no-such-key")
    with pytest.raises(AuthenticationError, match="does not exist"):
        SSHTransport(node).check_connection()


def test_it_gives_up_on_an_unreachable_host_after_its_retries(db, ssh_host, fast_ssh):
    from tests.hosts import free_port

    node = GpuNode(**ssh_host.node_fields(port=free_port()))
    started = time.monotonic()
    with pytest.raises(ConnectError, match=r"cannot reach .* \(gave up after 3 attempts\)"):
        SSHTransport(node).check_connection()
    assert time.monotonic() - started < 10


def test_it_copies_the_stand_in_to_a_sim_node_once(db, ssh_host, fast_ssh):
    node = GpuNode(**ssh_host.node_fields(launcher="sim"))
    first = SSHTransport(node).sim_command()
    assert first[0] == node.python and first[1].startswith(f"{ssh_host.root}/bin/cosmos-standin-")
    assert SSHTransport(node).sim_command() == first


def test_it_uses_a_jump_host(db, ssh_host, fast_ssh):
    node = GpuNode(
        **ssh_host.node_fields(
            jump_host=f"root@{ssh_host.host}:{ssh_host.port}", jump_host_key=ssh_host.host_public_key
        )
    )
    transport = SSHTransport(node)
    try:
        assert transport.run_command(["echo", "through the bastion"]).stdout == "through the bastion\n"
        assert transport._jump is not None
    finally:
        transport.close()


def test_it_reports_job_paths_as_posix(transport):
    assert transport.run_dir("rs_x") == PurePosixPath(transport.root) / "runs" / "rs_x"


def test_it_stops_an_upload_when_cancelled_and_resumes_it_later(transport, tmp_path, ssh_host):
    source = tmp_path / "input.bin"
    source.write_bytes(os.urandom(32 << 20))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    cached = ssh_host.root / "cache" / "sha256" / digest
    part = cached.with_name(f"{digest}.part")

    def reached_4_mib() -> bool:  # the runs were cancelled once 4 MiB reached the node
        return part.exists() and part.stat().st_size >= 4 << 20

    # Asked at every chunk (not a few times a second), so the test does not depend on the link's speed.
    cancelled = ThrottledCheck(reached_4_mib, interval=0)
    with pytest.raises(TransferCancelled):
        transport.put_files({transport.cache_path(digest): (source, digest)}, cancelled=cancelled)
    assert not cached.exists()
    assert transport.sha256_many([transport.cache_path(digest)]) == {}  # never a cache hit
    left_behind = part.stat().st_size
    assert 4 << 20 <= left_behind < 32 << 20
    assert transport.stage_in_cache({digest: source}) == (32 << 20) - left_behind  # resumed
    assert cached.read_bytes() == source.read_bytes() and not part.exists()


def test_it_stops_staging_at_once_when_already_cancelled(transport, tmp_path, ssh_host):
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(TransferCancelled):
        transport.stage_in_cache({digest: source}, cancelled=lambda: True)
    assert not (ssh_host.root / "cache" / "sha256" / digest).exists()


@pytest.mark.parametrize(
    "entry", ["folder", "link to the right bytes", "link to a folder", "part is a folder"]
)
def test_it_replaces_a_cache_entry_that_is_not_a_regular_file(transport, tmp_path, ssh_host, entry):
    digest, source, outside = break_cache_entry(ssh_host.root / "cache" / "sha256", tmp_path, entry)
    cached = ssh_host.root / "cache" / "sha256" / digest
    assert transport.stage_in_cache({digest: source}) == source.stat().st_size
    assert cached.is_file() and not cached.is_symlink()
    assert cached.read_bytes() == source.read_bytes()
    assert sorted(path.name for path in outside.iterdir()) == ["keep.txt", "same.bin"]  # untouched


def test_it_hands_a_command_its_stdin_instead_of_an_argument(transport):
    result = transport.run_command(["sh", "-c", 'read -r secret; echo "${#secret}"'], stdin=b"hf_abc\n")
    assert result.ok and result.stdout.strip() == "6"


def test_it_streams_a_long_commands_output_as_it_comes(transport):
    chunks = []
    code = transport.stream_command(
        ["sh", "-c", "cat; echo to-stderr >&2; exit 3"], on_output=chunks.append, stdin=b"from stdin\n"
    )
    assert code == 3
    assert b"".join(chunks) == b"from stdin\nto-stderr\n"
