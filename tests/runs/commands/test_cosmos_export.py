import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.exports import exportable_run


def cosmos_export(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("cosmos_export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_exports_the_users_runs_and_prints_json(tmp_path, alice, bob):
    mine = exportable_run(alice, index=0, starred=True)
    exportable_run(alice, index=1)
    exportable_run(bob, index=2, starred=True)
    out, err = cosmos_export("--out", str(tmp_path / "ds"), "--user", "alice", "--starred", "--json")
    result = json.loads(out)
    assert result["samples"] == 1
    assert [shard["name"] for shard in result["shards"]] == ["dataset-000000.tar"]
    assert result["skipped"] == []
    lines = (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == [mine.id]
    assert "Exporting 1 run to" in err


def test_it_takes_every_run_without_a_user_and_filters_by_rating(tmp_path, alice, bob):
    exportable_run(alice, index=0, rating=5)
    exportable_run(bob, index=1, rating=4)
    exportable_run(bob, index=2, rating=2)
    out, _ = cosmos_export("--out", str(tmp_path / "ds"), "--min-rating", "4", "--shard-samples", "1")
    assert out.startswith("Wrote 2 samples in 2 shards")
    assert sorted(path.name for path in (tmp_path / "ds").iterdir()) == [
        "dataset-000000.tar",
        "dataset-000001.tar",
        "manifest.jsonl",
    ]


def test_it_reads_the_user_from_the_environment(tmp_path, alice, bob, monkeypatch):
    exportable_run(alice, index=0)
    monkeypatch.setenv("COSMOS_USER", "bob")
    out, _ = cosmos_export("--out", str(tmp_path / "ds"), "--json", "--query", "foggy harbour", "--tag", "x")
    assert json.loads(out)["samples"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min-rating", "9"), "min_rating: a whole number of stars from 1 to 5"),
        (("--shard-size", "lots"), "'lots' is not a size"),
        (("--user", "nobody"), "--user nobody: no such user"),
        (("--shard-samples", "0"), "--shard-samples: at least 1"),
    ],
)
def test_it_refuses_bad_input_with_status_2(tmp_path, alice, args, message):
    with pytest.raises(CommandError, match=message) as refused:
        cosmos_export("--out", str(tmp_path / "ds"), *args)
    assert refused.value.returncode == 2
    assert not (tmp_path / "ds").exists()


def test_it_fails_with_status_1_on_a_folder_of_other_files(tmp_path, alice):
    exportable_run(alice)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("mine")
    with pytest.raises(CommandError, match="holds other files") as refused:
        cosmos_export("--out", str(tmp_path / "ds"), "--json")
    assert refused.value.returncode == 1
