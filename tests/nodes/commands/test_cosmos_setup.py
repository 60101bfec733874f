from io import StringIO

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command


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
