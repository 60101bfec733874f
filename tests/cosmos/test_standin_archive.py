"""The stand-in as one uploadable file: a deterministic zipapp that runs with plain python."""

import io
import zipfile

from cosmos import standin_archive
from cosmos.standin_archive import archive_name, write_standin_archive
from cosmos.standin_archive import standin_archive as build
from tests.standin import run_standin, video_facts
from tests.videos import write_test_video


def test_it_builds_the_same_bytes_every_time(monkeypatch):
    data, digest = build()
    monkeypatch.setattr(standin_archive, "_cache", {})

    assert build() == (data, digest)
    assert len(digest) == 64
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names[0] == "__main__.py"
    assert names[1:] == sorted(names[1:]) and "standin/cli.py" in names
    assert all(name == "__main__.py" or name.startswith("standin/") for name in names)
    assert all(
        info.date_time == (1980, 1, 1, 0, 0, 0) for info in zipfile.ZipFile(io.BytesIO(data)).infolist()
    )


def test_it_writes_the_archive_once_under_its_checksum(tmp_path):
    path = write_standin_archive(tmp_path)

    assert path == tmp_path / archive_name(build()[1])
    assert path.name.startswith("cosmos-standin-") and path.suffix == ".pyz"
    assert path.read_bytes() == build()[0]
    modified = path.stat().st_mtime_ns
    assert write_standin_archive(tmp_path) == path
    assert path.stat().st_mtime_ns == modified
    assert not list(tmp_path.glob(".*"))


def test_it_runs_a_model_from_the_archive_with_plain_python(tmp_path):
    program = write_standin_archive(tmp_path / "bin")
    write_test_video(tmp_path / "in.mp4", frames=5, width=64, height=36)
    (tmp_path / "spec.json").write_text('{"input_video_path": "in.mp4", "edge": {"control_weight": 1.0}}')

    result = run_standin(
        tmp_path,
        "cosmos_transfer1/diffusion/inference/transfer.py",
        "--controlnet_specs",
        "spec.json",
        "--video_save_folder",
        "out",
        program=program,
    )

    assert result.returncode == 0, result.stderr
    assert video_facts(tmp_path / "out" / "output.mp4")[:2] == (5, (128, 64))

    unknown = run_standin(tmp_path, "train.py", program=program)
    assert unknown.returncode == 2
    assert "unknown Cosmos script 'train.py'; known: " in unknown.stderr
    assert "scripts/inference.py" in unknown.stderr and "upsampler_pipeline.py" in unknown.stderr
