"""conftest.py - fixtures of the fault drills.

Each drill starts from a healthy stack with a full pool of workers and
leaves one behind: whatever a drill stopped (PostgreSQL, the master) is
started again by `scripts/stack.sh start` (idempotent: it starts only what is
not running). A drill that cannot restore the stack fails.
"""

import pytest
import requests

import drill


def pytest_report_header(config):
    return "fault drills against %s (STACK_VAR=%s, %d processes x %d threads)" % (
        drill.BASE_URL, drill.STACK_VAR, drill.PROCESSES, drill.THREADS)


@pytest.fixture(scope="session", autouse=True)
def stack_up():
    try:
        requests.get(drill.BASE_URL + "/healthz", timeout=5)
    except requests.RequestException as e:
        pytest.exit("the test stack does not answer at %s (%s): start it first"
                    % (drill.BASE_URL, e.__class__.__name__), returncode=1)
    drill.ensure_healthy()
    yield
    drill.ensure_healthy()


@pytest.fixture(autouse=True)
def healthy_around():
    """A full, healthy pool before the drill, and again after it."""
    drill.ensure_healthy()
    yield
    drill.ensure_healthy()


@pytest.fixture(scope="session")
def ids():
    """Servers for the background load to read and patch."""
    return drill.seed(20, "drill load")


@pytest.fixture(scope="session")
def api():
    return drill.mailapi.Client(session=requests.Session())
