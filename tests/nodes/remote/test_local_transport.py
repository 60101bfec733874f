import hashlib
import os
import signal
import stat
import sys
from pathlib import Path, PurePosixPath

import pytest

from nodes.remote.base import TransferCancelled, UnsafePathError
from nodes.remote.jobs import job_script
from nodes.remote.local import LocalTransport
from tests.factories import GpuNodeFactory
from tests.nodes.remote.cache_entries import break_cache_entry
from tests.waiting import wait_for


@pytest.fixture
def transport(db, tmp_path):
    return LocalTransport(GpuNodeFactory(remote_root=str(tmp_path / "node")))


def launch(transport: LocalTransport, command: str) -> PurePosixPath:
    job_dir = transport.run_dir("rs_job")
    transport.makedirs(job_dir)
    transport.launch(
        job_dir,
        job_script(job_dir=job_dir, argv=["sh", "-c", command], env={"GREETING": "hi"}, run_id="rs_job"),
    )
    return job_dir


def wait_until(predicate, what: str):
    return wait_for(predicate, timeout=10, message=f"the job never {what}")


def test_it_copies_files_atomically_both_ways(transport, tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(b"x" * 1000)
    remote = transport.cache_path("abc")
    assert transport.put_file(source, remote) == 1000
    assert not list(Path(remote).parent.glob("*.part"))
    back = tmp_path / "out" / "back.bin"
    assert transport.get_file(remote, back) == 1000
    assert back.read_bytes() == source.read_bytes()


def test_it_writes_a_secret_file_readable_by_its_owner_only(transport):
    secret = Path(transport.root / "runs" / "rs_job" / "job.env")
    plain = Path(transport.root / "plain.txt")
    previous = os.umask(0)  # a umask that leaves a plain write readable and writable by all
    try:
        transport.write_text(PurePosixPath(secret), "HF_TOKEN=hf_x\n", mode=0o600)
        transport.write_text(PurePosixPath(plain), "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666  # the umask was in force
    assert secret.read_text() == "HF_TOKEN=hf_x\n"
    assert os.listdir(secret.parent) == ["job.env"]  # no temporary left beside it


def test_it_never_writes_a_secret_through_a_link_left_at_its_temporary_name(transport, tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("untouched")
    folder = Path(transport.root / "runs" / "rs_job")
    folder.mkdir(parents=True)
    (folder / ".job.env.part").symlink_to(elsewhere)
    transport.write_text(PurePosixPath(folder / "job.env"), "HF_TOKEN=hf_x\n", mode=0o600)
    assert elsewhere.read_text() == "untouched"
    assert (folder / "job.env").read_text() == "HF_TOKEN=hf_x\n"
    assert stat.S_IMODE((folder / "job.env").stat().st_mode) == 0o600


def test_it_hashes_like_hashlib(transport):
    path = transport.root / "f"
    transport.write_text(path, "hello")
    assert transport.sha256(path) == hashlib.sha256(b"hello").hexdigest()
    assert transport.sha256(transport.root / "missing") is None


def test_it_runs_the_stand_in_from_its_archive_in_the_data_folder(transport, settings):
    python, program = transport.sim_command()

    assert python == sys.executable
    assert Path(program).parent == Path(settings.COSMOS_DATA_DIR) / "bin"
    assert Path(program).name.startswith("cosmos-standin-") and program.endswith(".pyz")
    assert Path(program).is_file()
    assert transport.sim_command() == [python, program]


def test_it_reads_from_an_offset(transport):
    path = transport.root / "log"
    transport.write_text(path, "0123456789")
    assert transport.read_bytes(path, 4, 3) == b"456"
    assert transport.read_bytes(transport.root / "missing") == b""


def test_it_lists_files_recursively(transport):
    transport.write_text(transport.root / "out" / "a.txt", "a")
    transport.write_text(transport.root / "out" / "video_0" / "output.mp4", "bb")
    assert [(f.path, f.size) for f in transport.list_files(transport.root / "out")] == [
        ("a.txt", 1),
        ("video_0/output.mp4", 2),
    ]
    assert transport.list_files(transport.root / "nothing") == []


def test_it_runs_a_detached_job_and_records_its_exit_code(transport):
    job_dir = launch(transport, 'echo "$GREETING"; echo err >&2; exit 3')
    wait_until(lambda: transport.job_state(job_dir).finished, "finished")
    state = transport.job_state(job_dir)
    assert state.exit_code == 3 and not state.lost
    assert transport.read_bytes(job_dir / "job.log") == b"hi\nerr\n"


def test_it_follows_the_log_until_the_job_ends(transport):
    job_dir = launch(transport, "for n in 1 2 3; do echo line $n; sleep 0.1; done")
    chunks = list(transport.follow(job_dir, poll=0.02))
    assert b"".join(chunks) == b"line 1\nline 2\nline 3\n"
    assert b"" in chunks  # quiet spells are reported, so time-based progress can move
    assert transport.job_state(job_dir).exit_code == 0


def test_it_resumes_following_from_an_offset(transport):
    job_dir = launch(transport, "echo first; echo second")
    wait_until(lambda: transport.job_state(job_dir).finished, "finished")
    assert b"".join(transport.follow(job_dir, offset=len(b"first\n"))) == b"second\n"


def test_it_terminates_the_whole_process_group(transport):
    job_dir = launch(transport, "sleep 60 & sleep 60")
    wait_until(lambda: transport.job_state(job_dir).alive, "started")
    assert transport.terminate_job(job_dir, grace=5)
    state = transport.job_state(job_dir)
    assert not state.alive and state.exit_code is None


def test_it_kills_a_job_that_ignores_term(transport):
    job_dir = launch(transport, "trap '' TERM; echo deaf; sleep 60")
    wait_until(lambda: transport.read_bytes(job_dir / "job.log") == b"deaf\n", "set its trap")
    assert transport.terminate_job(job_dir, grace=0.3)


def test_it_reports_a_killed_job_as_lost(transport):
    job_dir = launch(transport, "sleep 60")
    wait_until(lambda: transport.job_state(job_dir).alive, "started")
    pgid = int(transport.read_bytes(job_dir / "job.pid"))
    transport._signal_group(pgid, signal.SIGKILL)
    wait_until(lambda: not transport.job_state(job_dir).alive, "stopped")
    assert transport.job_state(job_dir).lost


def test_it_deletes_only_run_folders(transport):
    job_dir = transport.run_dir("rs_x")
    transport.write_text(job_dir / "f", "x")
    transport.remove_run_dir(job_dir)
    assert not transport.exists(job_dir)
    for path in (
        transport.root,
        transport.root / "runs",
        transport.root / "cache",
        transport.root / "runs" / "..",
    ):
        with pytest.raises(UnsafePathError):
            transport.remove_run_dir(path)


def test_it_stops_an_upload_when_cancelled_and_leaves_nothing_under_the_cache_name(transport, tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(os.urandom(8 << 20))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    remote = Path(transport.cache_path(digest))
    asked = []

    def cancelled() -> bool:  # asked between chunks: the run is cancelled once 3 MiB went out
        asked.append(sum(path.stat().st_size for path in remote.parent.glob(f".{digest}.*.part")))
        return asked[-1] >= 3 << 20

    with pytest.raises(TransferCancelled):
        transport.put_file(source, transport.cache_path(digest), sha256=digest, cancelled=cancelled)
    assert 3 << 20 <= asked[-1] < 8 << 20
    assert not remote.exists()
    assert transport.sha256_many([transport.cache_path(digest)]) == {}  # never a cache hit
    assert transport.stage_in_cache({digest: source}) == 8 << 20
    assert transport.sha256(transport.cache_path(digest)) == digest


def test_it_stops_staging_at_once_when_already_cancelled(transport, tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(TransferCancelled):
        transport.stage_in_cache({digest: source}, cancelled=lambda: True)
    assert not Path(transport.cache_path(digest)).exists()


@pytest.mark.parametrize("entry", ["folder", "link to the right bytes", "link to a folder", "fifo"])
def test_it_replaces_a_cache_entry_that_is_not_a_regular_file(transport, tmp_path, entry):
    digest, source, outside = break_cache_entry(Path(transport.root) / "cache" / "sha256", tmp_path, entry)
    cached = Path(transport.cache_path(digest))
    assert transport.stage_in_cache({digest: source}) == source.stat().st_size
    assert cached.is_file() and not cached.is_symlink()
    assert transport.sha256(transport.cache_path(digest)) == digest
    assert sorted(path.name for path in outside.iterdir()) == ["keep.txt", "same.bin"]  # untouched


def test_it_clears_only_cache_entries(transport):
    for path in (
        transport.root / "runs" / ("a" * 64),
        transport.root / "cache" / "sha256" / "not-a-digest",
        transport.root / "cache" / "sha256" / ".." / ("a" * 64),
        transport.root / "cache" / ("a" * 64),
    ):
        with pytest.raises(UnsafePathError):
            transport.clear_cache_entries([path])


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
