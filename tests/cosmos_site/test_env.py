from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cosmos_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_path,
    env_paths,
    env_secret,
    env_str,
)


def test_it_uses_the_default_when_unset_or_blank(monkeypatch):
    monkeypatch.delenv("COSMOS_X", raising=False)
    assert env_str("COSMOS_X", "d") == "d"
    monkeypatch.setenv("COSMOS_X", "   ")
    assert env_int("COSMOS_X", 7) == 7


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("YES", True), ("1", True), ("off", False), ("0", False)]
)
def test_it_reads_booleans(monkeypatch, raw, value):
    monkeypatch.setenv("COSMOS_X", raw)
    assert env_bool("COSMOS_X", not value) is value


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (
            lambda: env_bool("COSMOS_X", False),
            "maybe",
            r"COSMOS_X='maybe' is not a boolean: use true or false",
        ),
        (
            lambda: env_int("COSMOS_X", 1, minimum=1),
            "0",
            r"COSMOS_X='0' is not valid: use a whole number of at least 1",
        ),
        (lambda: env_int("COSMOS_X", 1), "1.5", r"COSMOS_X='1.5' is not valid: use a whole number"),
        (
            lambda: env_float("COSMOS_X", 1.0, minimum=0),
            "fast",
            r"COSMOS_X='fast' is not valid: use a number",
        ),
        (lambda: env_float("COSMOS_X", 1.0), "nan", r"COSMOS_X='nan' is not valid"),
        (lambda: env_choice("COSMOS_X", "a", ["a", "b"]), "c", r"COSMOS_X='c' is not valid: use one of a, b"),
    ],
)
def test_it_names_the_variable_of_a_malformed_value(monkeypatch, reader, raw, message):
    monkeypatch.setenv("COSMOS_X", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        reader()


def test_it_reads_lists_and_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("COSMOS_X", " a, b ,,c ")
    assert env_list("COSMOS_X", []) == ["a", "b", "c"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSMOS_X", "data")
    assert env_path("COSMOS_X", tmp_path) == tmp_path / "data"


def test_it_reads_folder_lists_resolved(monkeypatch, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("COSMOS_X", f"{tmp_path / 'link'}, /data/renders/../renders ,")
    assert env_paths("COSMOS_X") == [(tmp_path / "real").resolve(), Path("/data/renders")]
    monkeypatch.delenv("COSMOS_X")
    assert env_paths("COSMOS_X") == []
    monkeypatch.setenv("COSMOS_X", "renders")
    with pytest.raises(ImproperlyConfigured, match="COSMOS_X: 'renders' is not an absolute path"):
        env_paths("COSMOS_X")


def test_it_reads_secrets_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("COSMOS_KEY", raising=False)
    monkeypatch.setenv("COSMOS_KEY_FILE", str(secret))
    assert env_secret("COSMOS_KEY") == "s3cret"


def test_it_refuses_both_a_secret_and_its_file(monkeypatch, tmp_path):
    monkeypatch.setenv("COSMOS_KEY", "a")
    monkeypatch.setenv("COSMOS_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ImproperlyConfigured, match="COSMOS_KEY and COSMOS_KEY_FILE are both set"):
        env_secret("COSMOS_KEY")


def test_it_names_an_unreadable_secret_file(monkeypatch, tmp_path):
    monkeypatch.delenv("COSMOS_KEY", raising=False)
    monkeypatch.setenv("COSMOS_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=r"COSMOS_KEY_FILE=.* cannot be read"):
        env_secret("COSMOS_KEY")
