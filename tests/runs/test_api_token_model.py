from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import ApiToken


def _writes(queries) -> list[str]:
    return [query["sql"] for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")]


def test_it_finds_the_user_of_each_key_and_no_one_for_a_wrong_key(alice, bob):
    _, alice_key = ApiToken.issue(user=alice)
    _, bob_key = ApiToken.issue(user=bob)
    assert ApiToken.user_for(alice_key) == alice
    assert ApiToken.user_for(bob_key) == bob
    assert ApiToken.user_for(alice_key + "x") is None


def test_it_refuses_the_key_of_a_deactivated_user(alice):
    _, key = ApiToken.issue(user=alice)
    alice.is_active = False
    alice.save()
    assert ApiToken.user_for(key) is None


def test_it_records_the_first_use_and_then_writes_nothing_for_a_minute(alice, bob):
    token, key = ApiToken.issue(user=alice)
    bob_token, _ = ApiToken.issue(user=bob)
    with CaptureQueriesContext(connection) as first:
        ApiToken.user_for(key)
    assert len(_writes(first.captured_queries)) == 1
    token.refresh_from_db()
    assert token.last_used_at is not None
    recorded = token.last_used_at
    with CaptureQueriesContext(connection) as later:
        for _ in range(5):
            assert ApiToken.user_for(key) == alice
    assert _writes(later.captured_queries) == []  # each request only reads
    token.refresh_from_db()
    assert token.last_used_at == recorded
    bob_token.refresh_from_db()
    assert bob_token.last_used_at is None  # another user's key was not touched


def test_it_records_a_use_again_once_the_last_one_is_a_minute_old(alice):
    token, key = ApiToken.issue(user=alice)
    old = timezone.now() - timedelta(minutes=1, seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=old)
    assert ApiToken.user_for(key) == alice
    token.refresh_from_db()
    assert token.last_used_at > old


def test_it_lets_only_one_of_two_stale_readers_write(alice):
    token, _ = ApiToken.issue(user=alice)
    first, second = ApiToken.objects.get(pk=token.pk), ApiToken.objects.get(pk=token.pk)
    assert first.mark_used() is True
    assert second.mark_used() is False  # it read the row before the first wrote it
