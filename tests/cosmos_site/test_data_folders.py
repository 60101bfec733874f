"""The data folders: created where they are needed, and reported by a system check when they cannot be."""

import logging
import os

import pytest
from django.core.checks.registry import registry
from django.core.exceptions import ImproperlyConfigured

from cosmos_site.checks import check_data_folders
from cosmos_site.data_folders import create_data_folders, data_folders
from cosmos_site.log_files import RotatingFileHandler


@pytest.fixture
def deployment(settings, data_dir):
    """Every folder of the deployment under the test's data folder, none of them made yet."""
    settings.STATIC_ROOT = data_dir / "static"
    broker = data_dir / "broker"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
    }
    return data_dir


def test_it_is_registered_as_a_system_check():
    assert check_data_folders in registry.registered_checks


def test_it_finds_no_problem_with_folders_it_can_still_create(deployment):
    assert not deployment.exists()
    assert check_data_folders(None) == []


def test_it_creates_every_data_folder(deployment):
    create_data_folders()
    names = {str(folder.path.relative_to(deployment)) for folder in data_folders()}
    assert names == {".", "logs", "static", "broker/queue", "broker/processed", "broker/control"}
    assert all(folder.path.is_dir() for folder in data_folders())
    create_data_folders()  # again: nothing to do
    assert check_data_folders(None) == []


def test_it_reports_a_data_folder_that_cannot_be_created_once_naming_the_variable_and_the_path(
    settings, tmp_path, deployment
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for name in ("COSMOS_DATA_DIR", "COSMOS_LOGS_DIR", "STATIC_ROOT"):
        setattr(settings, name, blocker / "data" / getattr(settings, name).relative_to(deployment))
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(blocker / "data" / "broker" / "queue")}

    (error,) = check_data_folders(None)  # the folders inside it have the same fix

    assert error.id == "cosmos.E001"
    assert (
        error.msg
        == f"{blocker / 'data'} cannot be created: {blocker} is not a folder (needed for the data folder)."
    )
    assert f"set COSMOS_DATA_DIR (now {blocker / 'data'})" in error.hint
    with pytest.raises(ImproperlyConfigured, match=f"cannot create {blocker / 'data'} \\(the data folder\\)"):
        create_data_folders()


def test_it_reports_a_file_where_a_folder_belongs(deployment):
    deployment.mkdir()
    (deployment / "logs").write_text("")
    (error,) = check_data_folders(None)
    assert error.msg == f"{deployment / 'logs'} is not a folder (needed for log files)."


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_it_reports_a_folder_it_may_not_write(deployment):
    deployment.mkdir(mode=0o500)
    try:
        (error,) = check_data_folders(None)
    finally:
        deployment.chmod(0o700)
    assert error.msg == f"{deployment} is not writable by this user (needed for the data folder)."


def test_it_creates_the_logs_folder_at_the_first_record_only(tmp_path):
    log_file = tmp_path / "logs" / "cosmos.log"
    handler = RotatingFileHandler(log_file, maxBytes=1000, backupCount=1, delay=True)
    try:
        assert not log_file.parent.exists()
        handler.emit(logging.makeLogRecord({"msg": "hello"}))
    finally:
        handler.close()
    assert log_file.read_text() == "hello\n"
