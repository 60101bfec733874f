"""Input transfer speed through a real sshd, against OpenSSH's scp on the same host in the same run.

    .venv/bin/python bench/transfer.py [--mib 1024] [--files 4] [--repeat 2]

Starts a loopback sshd test host (tests/hosts.py), writes --mib MiB of incompressible "input
videos" split over --files files, then times:
- our upload into the node's content-addressed cache (SFTP, resumable, sha256-verified on both
  ends) against `scp` of the same files;
- our download (SFTP with prefetch, verified) against `scp` back;
- a second staging of the same inputs, which should send 0 bytes.
Each timing is the best of --repeat. Goals: at least 0.9x scp each way; 0 bytes on reuse.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(data_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
    os.environ["COSMOS_DATA_DIR"] = str(data_dir)
    import django

    django.setup()


def write_inputs(folder: Path, total_mib: int, files: int) -> dict[str, Path]:
    folder.mkdir(parents=True)
    each = total_mib * 1024 * 1024 // files
    inputs = {}
    for index in range(files):
        path = folder / f"input_{index}.mp4"
        with open(path, "wb") as handle:
            remaining = each
            while remaining:
                block = os.urandom(min(remaining, 16 * 1024 * 1024))
                handle.write(block)
                remaining -= len(block)
        with open(path, "rb") as handle:
            inputs[hashlib.file_digest(handle, "sha256").hexdigest()] = path
    return inputs


def best_of(repeat: int, action, reset=None) -> float:
    times = []
    for _ in range(repeat):
        if reset:
            reset()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def scp_options(host) -> list[str]:
    known_hosts = host.base / "bench_known_hosts"
    known_hosts.write_text(host.known_hosts_line() + "\n")
    return [
        "-q",
        "-P",
        str(host.port),
        "-i",
        str(host.client_key),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="total input size in MiB (default 1024)")
    parser.add_argument("--files", type=int, default=4, help="number of input files (default 4)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs (default 2)")
    options = parser.parse_args()
    if shutil.which("scp") is None or not Path("/usr/sbin/sshd").exists():
        sys.exit("this benchmark needs OpenSSH's sshd and scp (apt-get install openssh-server)")

    with tempfile.TemporaryDirectory(prefix="cosmos-bench-") as scratch:
        scratch = Path(scratch)
        setup_django(scratch / "data")
        from nodes.models import GpuNode
        from nodes.remote.ssh import SSHTransport
        from tests.hosts import SshTestHost

        host = SshTestHost(scratch / "host")
        host.start()
        try:
            inputs = write_inputs(scratch / "inputs", options.mib, options.files)
            total = sum(path.stat().st_size for path in inputs.values())
            transport = SSHTransport(GpuNode(**host.node_fields()))
            cache = host.root / "cache" / "sha256"
            scp_target = host.root / "scp"
            scp = ["scp", *scp_options(host)]

            def clear_remote() -> None:
                shutil.rmtree(cache, ignore_errors=True)
                shutil.rmtree(scp_target, ignore_errors=True)
                scp_target.mkdir(parents=True)

            ours_up = best_of(options.repeat, lambda: transport.stage_in_cache(inputs), clear_remote)
            scp_up = best_of(
                options.repeat,
                lambda: subprocess.run(
                    [*scp, *map(str, inputs.values()), f"root@{host.host}:{scp_target}/"], check=True
                ),
                clear_remote,
            )
            transport.stage_in_cache(inputs)
            check_up = best_of(
                options.repeat, lambda: transport.sha256_many(list(transport.cache_path(d) for d in inputs))
            )
            sent_again = transport.stage_in_cache(inputs)

            back = scratch / "back"

            def clear_local() -> None:
                shutil.rmtree(back, ignore_errors=True)
                back.mkdir()

            digests = {transport.cache_path(digest): digest for digest in inputs}

            def our_download() -> None:
                for remote, digest in digests.items():
                    transport.get_file(remote, back / remote.name, sha256=digest)

            ours_down = best_of(options.repeat, our_download, clear_local)
            scp_down = best_of(
                options.repeat,
                lambda: subprocess.run(
                    [*scp, *(f"root@{host.host}:{remote}" for remote in digests), str(back)], check=True
                ),
                clear_local,
            )
            transport.close()
        finally:
            host.stop()

    megabytes = total / 1e6
    print(f"inputs: {total / 2**20:.0f} MiB in {len(inputs)} files, best of {options.repeat}")
    print(f"{'':<10}{'ours MB/s':>12}{'scp MB/s':>12}{'ratio':>8}   goal")
    for label, ours, theirs in (("upload", ours_up, scp_up), ("download", ours_down, scp_down)):
        ratio = theirs / ours
        print(f"{label:<10}{megabytes / ours:>12.0f}{megabytes / theirs:>12.0f}{ratio:>8.2f}   >= 0.90")
    print(
        f"(the node's sha256 of every input alone takes {check_up:.2f} s, {check_up / ours_up:.0%} of our "
        "upload time; scp does not verify. On a real node it runs on the node's own cores; here both ends "
        f"share {os.cpu_count()} cores.)"
    )
    print(f"bytes sent when the same inputs are staged again: {sent_again}   goal 0")


if __name__ == "__main__":
    main()
