from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command


@pytest.fixture(autouse=True)
def folders_under_the_data_folder(settings, data_dir):
    """cosmos_setup creates the data folders: the test's, not the checkout's var/."""
    settings.STATIC_ROOT = data_dir / "static"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(data_dir / "broker" / "queue")}


def test_it_creates_an_admin_once_and_shows_the_password_once(db):
    first, second = StringIO(), StringIO()
    call_command("cosmos_setup", stdout=first)
    call_command("cosmos_setup", stdout=second)
    line = next(
        line for line in first.getvalue().splitlines() if line.startswith("Created the admin account")
    )
    username, password = line.split(": ", 1)[1].split(" / ")
    assert authenticate(username=username, password=password).is_superuser
    assert "password" not in second.getvalue().lower()
    assert get_user_model().objects.count() == 1
    assert "local-sim (sim)" in second.getvalue()


def test_it_leaves_an_existing_superuser_alone(db):
    get_user_model().objects.create_superuser("root", "", "pw")
    out = StringIO()
    call_command("cosmos_setup", stdout=out)
    assert "Created" not in out.getvalue()
    assert get_user_model().objects.count() == 1


def test_it_creates_the_data_folders(db, data_dir):
    call_command("cosmos_setup", stdout=StringIO())
    assert all((data_dir / name).is_dir() for name in ("logs", "static", "broker/queue"))
