"""Dataset export speed over 1,000 runs, against a plain `tar` of the same files in the same run.

    .venv/bin/python bench/export.py [--runs 1000] [--kib 1024] [--repeat 3] [--shard-size 1GB]

Builds a scratch data folder (a migrated SQLite database), bulk-creates --runs completed runs, each
with an output "video" of --kib KiB of incompressible bytes in its own folder, then times:
- our export: cosmos_export's service, from the selection query (provenance records, sorted by
  run id) to the shards and manifest synced to disk and renamed into place, --shard-size per shard;
- the same without syncing to disk (tar does not sync: its archive may still be in the page cache
  when it exits), to tell the writer's own speed from the disk's;
- GNU tar of the same output files into one archive (`tar -cf … -T list`), the baseline.
Both write into the same folder, from files that the first pass brought into the page cache;
each timing is the best of --repeat. It prints MB/s of run files for each and the ratio (tar's
time over ours). Goal: at least 0.8x. It also checks that two exports are byte for byte the same.
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
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_runs(count: int, kib: int) -> list[Path]:
    """``count`` completed runs of one user, each with an output file of ``kib`` KiB; their files."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from prompts.models import Prompt
    from runs.models import Run, RunStatus

    owner = get_user_model().objects.create(username="bench")
    now = timezone.now()
    prompts = Prompt.objects.bulk_create(
        Prompt(owner=owner, name=f"bench-{index}", prompt_text=f"a harbour at dawn, take {index}")
        for index in range(count)
    )
    runs, files = [], []
    block = os.urandom(kib * 1024)
    for index, prompt in enumerate(prompts):
        run = Run(
            prompt=prompt,
            owner=owner,
            status=RunStatus.COMPLETED,
            started_at=now,
            completed_at=now,
            execution_config={"parameters": {"seed": index, "guidance": 7}, "node": "local-sim"},
        )
        folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
        folder.mkdir(parents=True)
        video = folder / "output.mp4"
        # Each file differs (its first bytes), as real videos do.
        video.write_bytes(index.to_bytes(8, "big") + block[8:])
        run.outputs = {"dir": str(folder), "files": ["output.mp4"], "video": str(video)}
        runs.append(run)
        files.append(video)
    Run.objects.bulk_create(runs)
    return files


def best_of(repeat: int, action, reset) -> float:
    times = []
    for _ in range(repeat):
        reset()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="completed runs to export (default 1000)")
    parser.add_argument("--kib", type=int, default=1024, help="KiB of each run's output (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--shard-size", default="1GB", help="largest shard (default 1GB)")
    options = parser.parse_args()
    if shutil.which("tar") is None:
        sys.exit("this benchmark needs tar")

    with tempfile.TemporaryDirectory(prefix="cosmos-bench-") as scratch:
        scratch = Path(scratch)
        setup_django(scratch / "data")
        from cosmos.humanize import parse_byte_size
        from runs.datasets.export import ExportOptions, dataset_runs, dataset_write

        files = make_runs(options.runs, options.kib)
        total = sum(path.stat().st_size for path in files)
        outputs = files[0].parent.parent
        listing = scratch / "files.txt"
        listing.write_text("".join(f"{path.relative_to(outputs)}\n" for path in files))
        target = scratch / "out"
        export_options = ExportOptions(shard_bytes=parse_byte_size(options.shard_size))

        def clear() -> None:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()

        def ours(folder: Path, durable: bool = True) -> None:
            runs = dataset_runs(selection={}, user=None)
            dataset_write(runs=runs, out=folder, options=export_options, durable=durable)

        def plain_tar() -> None:
            subprocess.run(
                ["tar", "-cf", str(target / "plain.tar"), "-C", str(outputs), "-T", str(listing)], check=True
            )

        for path in files:  # into the page cache, for both
            path.read_bytes()
        ours_time = best_of(options.repeat, lambda: ours(target / "dataset"), clear)
        unsynced_time = best_of(options.repeat, lambda: ours(target / "dataset", durable=False), clear)
        tar_time = best_of(options.repeat, plain_tar, clear)
        clear()
        ours(target / "first")
        ours(target / "second")
        same = digests(target / "first") == digests(target / "second")
        shards = len(list((target / "first").glob("*.tar")))

    megabytes = total / 1e6
    print(
        f"{options.runs} runs, {total / 2**20:.0f} MiB of outputs, {shards} shard(s), "
        f"best of {options.repeat}, {os.cpu_count()} cores"
    )
    print(f"{'':<24}{'seconds':>9}{'MB/s':>9}{'ratio':>8}")
    for label, seconds in (
        ("our export", ours_time),
        ("  without syncing", unsynced_time),
        ("plain tar", tar_time),
    ):
        print(f"{label:<24}{seconds:>9.2f}{megabytes / seconds:>9.0f}{tar_time / seconds:>8.2f}")
    print("ratio: tar's time over each; goal >= 0.80 for our export")
    print(f"two exports byte for byte the same: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
