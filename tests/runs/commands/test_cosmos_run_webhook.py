import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runs.models import Run
from tests.fixtures_webhooks import PUBLIC_HOOK_URL
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.usefixtures("public_dns")


def test_it_registers_a_webhook_for_the_queued_run(alice, fast_sim, render_dir, no_workers):
    out = StringIO()
    call_command(
        "cosmos_run", "a city", str(render_dir), "--queue", "--no-follow", "--json",
        "--user", "alice", "--webhook", PUBLIC_HOOK_URL, stdout=out, stderr=StringIO(),
    )  # fmt: skip
    printed = json.loads(out.getvalue())
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == alice and endpoint.scope == printed["run_id"] == Run.objects.get().id
    assert printed["webhook"]["webhook_id"] == endpoint.id and printed["webhook"]["secret"] == endpoint.secret


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--user", "alice", "--webhook", "http://192.168.1.20/hook"], "--webhook: .*public addresses only"),
        (["--webhook", PUBLIC_HOOK_URL], "--webhook needs --user"),
    ],
)
def test_it_refuses_a_webhook_it_cannot_register_and_writes_nothing(
    alice, fast_sim, render_dir, no_workers, extra, message
):
    with pytest.raises(CommandError, match=message) as raised:
        call_command(
            "cosmos_run", "a city", str(render_dir), "--queue", "--no-follow", *extra,
            stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 2
    assert not Run.objects.exists() and not WebhookEndpoint.objects.exists()
