"""The JSON API called from a test as a script calls it: a key in the Authorization header, JSON bodies."""

import json


def api_call(client, method: str, url: str, key: str | None = None, body=None):
    """``method`` (get, post, delete…) on ``url`` with the API key ``key`` (none: unauthenticated)
    and ``body`` sent as JSON."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is None:
        return getattr(client, method)(url, headers=headers)
    return getattr(client, method)(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )
