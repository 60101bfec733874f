"""Every operation of /api/openapi.json driven with generated requests (schemathesis): no server error.

Schemathesis reads the API's own OpenAPI document, then Hypothesis generates requests that fit
it and requests that break it (wrong types, huge numbers, odd Unicode, missing fields); each is
sent through the WSGI application with a real key. Whatever comes in, the answer must be a
documented status with a JSON body of the declared shape, never a 5xx.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from runs.models import ApiToken
from tests.factories import RunFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# A request that breaks the schema must be refused with one of these. Schemathesis's own list
# lacks 413, our answer to a body past COSMOS_API_MAX_BODY_BYTES (a list of ten thousand run ids
# fits the schema's item count but not the size), checked before the schema is.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
)

# The document is served by the application itself (no database needed to read it).
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application(), config=CONFIG)


@pytest.fixture
def alices_key(alice, bob, fast_sim):
    # Something to find: runs of Alice's and of a stranger's, so lists and lookups are not all empty.
    RunFactory(owner=alice)
    RunFactory(owner=bob)
    return ApiToken.issue(user=alice)[1]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is a bug, never bad luck
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_it_never_answers_a_generated_request_with_a_server_error(case, alices_key):
    response = case.call(headers={"Authorization": f"Bearer {alices_key}"})
    case.validate_response(response, checks=CHECKS)
