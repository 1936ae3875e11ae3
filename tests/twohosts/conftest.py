"""conftest.py - fixtures of the two-hosts suite: the layout of
deploy/README.md ("Several hosts") started once for the session (layout.py)
beside the running test stack, and stopped at its end, at exit, and on
SIGTERM (tests/run_all.sh's timeout sends one), so no process of it
outlives the suite."""

import atexit
import signal
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "api"))
sys.path.insert(0, str(HERE))

import layout  # noqa: E402

_layout = layout.Layout()
atexit.register(_layout.stop)


def _terminated(signum, frame):
    # Leave through the normal way out, so fixtures and atexit stop the layout.
    raise KeyboardInterrupt("SIGTERM")


signal.signal(signal.SIGTERM, _terminated)


def pytest_report_header(config):
    return "two hosts and a front on 127.0.0.1:%d-%d (STACK_VAR=%s, service %s)" % (
        layout.PORT_BASE, layout.PORT_BASE + 5, layout.STACK_VAR, layout.BINARY)


@pytest.fixture(scope="session")
def hosts():
    """The running layout (layout.Layout): .a, .b, .front, .ca."""
    try:
        _layout.start()
        yield _layout
    finally:
        _layout.stop()


@pytest.fixture(autouse=True)
def whole(hosts):
    """Every test starts with both hosts' services and all three nginx
    instances running and ready (a test that stopped one and failed before
    starting it again leaves it to this)."""
    for h in hosts.hosts:
        if h.service.pid() is None:
            h.service.start()
    for n in hosts.nginxes():
        assert n.pid(), "nginx %s is not running" % n.name
    for h in hosts.hosts:
        h.wait_ready()
    yield
