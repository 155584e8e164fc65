"""Waiting on a real condition in the end-to-end tests."""

import time

import pytest


def wait_for(fn, timeout: float, what: str, interval: float = 0.2, describe=None):
    """Polls fn() until it returns something truthy; fails naming `what` after `timeout`
    (with describe()'s text, when given, to say what the test saw)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)
