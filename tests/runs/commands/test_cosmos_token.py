import pytest
from django.core.management import CommandError, call_command

from runs.models import ApiToken


def test_it_creates_a_key_that_opens_the_api_for_its_user(alice, capsys):
    call_command("cosmos_token", "create", "alice", "--name", "farm")
    key = capsys.readouterr().out.strip()
    assert ApiToken.user_for(key) == alice
    call_command("cosmos_token", "list")
    listed = capsys.readouterr().out
    assert key[:10] in listed and "farm" in listed and key not in listed


def test_it_revokes_a_key_by_its_prefix(alice):
    token, key = ApiToken.issue(user=alice)
    call_command("cosmos_token", "revoke", token.prefix)
    assert ApiToken.user_for(key) is None


def test_it_refuses_a_prefix_that_names_several_keys(alice, bob):
    ApiToken.issue(user=alice)
    ApiToken.issue(user=bob)
    with pytest.raises(CommandError, match="starts 2 keys"):
        call_command("cosmos_token", "revoke", "cw_")
    assert ApiToken.objects.count() == 2


def test_it_names_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user 'carol'"):
        call_command("cosmos_token", "create", "carol")
