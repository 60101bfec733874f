import tarfile

from runs.datasets.shards import (
    Member,
    Sample,
    json_bytes,
    member_header,
    plan_shards,
    write_dataset,
)


def sample(key: str, *sizes: int, mtime: int = 1_700_000_000) -> Sample:
    members = tuple(
        Member.from_bytes(f"{key}.part{index}", bytes([index + 1]) * size) for index, size in enumerate(sizes)
    )
    return Sample(key=key, mtime=mtime, members=members, record={"key": key})


def test_it_writes_members_of_any_size_as_tarfile_reads_them(tmp_path):
    on_disk = tmp_path / "video.bin"
    on_disk.write_bytes(b"v" * 1025)
    long_key = "k" * 120  # past ustar's 100 characters: GNU's long-name record
    files = (Member.from_file(f"{long_key}.mp4", on_disk),)
    samples = [sample("a", 0, 512, 513), Sample(key=long_key, mtime=5, members=files, record={})]
    result = write_dataset(samples, out=tmp_path / "out")
    with tarfile.open(tmp_path / "out" / "dataset-000000.tar") as archive:
        read = {member.name: archive.extractfile(member).read() for member in archive.getmembers()}
    assert read == {
        "a.part0": b"",
        "a.part1": b"\x02" * 512,
        "a.part2": b"\x03" * 513,
        f"{long_key}.mp4": b"v" * 1025,
    }
    assert (result.samples, result.data_bytes) == (2, 2050)


def test_it_gives_a_sample_bigger_than_a_shard_its_own_shard():
    small, big, other = sample("a", 100), sample("b", 5000), sample("c", 100)
    assert plan_shards([small, big, other], max_bytes=2048) == [[small], [big], [other]]
    assert plan_shards([small, other, big], max_bytes=2048) == [[small, other], [big]]
    assert plan_shards([small, other, big], max_samples=2) == [[small, other], [big]]
    assert plan_shards([]) == []


def test_it_writes_a_manifest_line_as_the_canonical_json_of_the_whole_line():
    record = {"prompt": 'é "quoted" \\ ☃\n', "seed": 7, "nested": {"b": 1, "a": [1.5, None]}}
    members = (Member.from_bytes("k.json", b"{}"), Member.from_bytes("k.mp4", b"v"))
    line = {"key": "k", "members": ["k.json", "k.mp4"], "record": record, "shard": "dataset-000000.tar"}
    for given in (None, json_bytes(record)):  # the record encoded here, or by the caller
        sample = Sample(key="k", mtime=0, members=members, record=record, record_json=given)
        assert sample.manifest_line("dataset-000000.tar") == json_bytes(line) + b"\n"


def tarfile_header(name: str, size: int, mtime: int) -> bytes:
    """The header Python's tarfile writes for a member with our fixed fields."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def test_it_builds_the_tar_headers_that_tarfile_builds():
    names = ["", "a.mp4", "rs_x.edge.mp4", "é☃" * 16, "é" * 50, "é" * 51, "k" * 100, "k" * 101, "k" * 300]
    sizes = [0, 1, 511, 512, 5_000_000_000, 8**11 - 1, 8**11, 2**40]
    mtimes = [0, 1, 1_700_000_000, 8**11 - 1, 8**11, -1]
    for name in names:
        for size in sizes:
            for mtime in mtimes:
                assert member_header(name, size, mtime) == tarfile_header(name, size, mtime), (
                    name,
                    size,
                    mtime,
                )
