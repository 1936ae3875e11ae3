"""conftest.py - fixtures of the API test suite (run against the real stack).

Environment:
  MAILSRV_TEST_URL      the stack's base URL (default http://127.0.0.1:18080)
  STACK_VAR             the test stack's var/ (default <repo>/var/test)
  MAILSRV_JWT_KEY_FILE  its HS256 key (default $STACK_VAR/keys/jwt-hs256.key)

Every test starts with no mail server (wiped through the API itself).
"""

import time

import pytest
import requests

import mailapi


def pytest_assertrepr_compare(op, left, right):
    """Never explain a failed comparison by showing a secret or a token."""
    def holds_secret(x):
        if isinstance(x, bytes):
            text = x.decode("utf-8", "replace")
        elif isinstance(x, str):
            text = str.__str__(x)
        else:
            text = repr(x)
        return mailapi.redact(text) != text
    if holds_secret(left) or holds_secret(right):
        return ["%s: a comparison of values that hold a secret or token (not shown)" % op]
    return None


def pytest_report_header(config):
    return "mail server API at %s (STACK_VAR=%s)" % (mailapi.BASE_URL, mailapi.STACK_VAR)


@pytest.fixture(scope="session")
def api():
    """The administrator's client. The stack must be running."""
    deadline = time.monotonic() + 15
    while True:
        try:
            requests.get(mailapi.BASE_URL + "/healthz", timeout=5)
            break
        except requests.RequestException as e:
            if time.monotonic() > deadline:
                pytest.exit("the service does not answer at %s (%s): start the test stack "
                            "first (scripts/stack.sh start)" % (mailapi.BASE_URL,
                                                                 e.__class__.__name__),
                            returncode=1)
            time.sleep(0.5)
    return mailapi.Client()


@pytest.fixture(autouse=True)
def clean(request):
    """Each test starts with no mail server."""
    client = request.getfixturevalue("api")
    client.wipe()
    yield


@pytest.fixture
def anon():
    """A client that sends no Authorization header."""
    return mailapi.Client(token=None)


@pytest.fixture
def client_for():
    """Clients with other tokens: client_for(token)."""
    return lambda token: mailapi.Client(token=token)
