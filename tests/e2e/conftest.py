"""Fixtures for end-to-end tests: a real podshimd on a private socket and state dir."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

from podshim.daemon import Podshimd, podshimd_binary  # noqa: E402


@pytest.fixture
def podshimd_path():
    path = podshimd_binary()
    if not path.exists():
        pytest.fail(f"podshimd not built at {path}")
    return path


@pytest.fixture
def daemon(podshimd_path, request):
    """A started podshimd; stopped and its directories removed afterwards."""
    d = Podshimd(podshimd_path)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(f"--- podshimd log ---\n{d.log()}")


@pytest.fixture
def client(daemon):
    with daemon.client() as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
