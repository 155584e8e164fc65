"""Wire compatibility of proto/runtime/v1/api.proto with the upstream CRI (k8s.io/cri-api).

Runs tests/proto/check_compat.py on our file and on deliberately broken copies of it.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHECKER = HERE / "check_compat.py"
OURS = HERE.parents[1] / "proto" / "runtime" / "v1" / "api.proto"


def _env():
    env = dict(os.environ)
    if shutil.which("go") is None and Path("/usr/local/go/bin/go").is_file():
        env["PATH"] = "/usr/local/go/bin" + os.pathsep + env.get("PATH", "")
    return env


def run_checker(*args):
    proc = subprocess.run([sys.executable, str(CHECKER), *args], capture_output=True,
                          text=True, env=_env(), timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def broken_copy(tmp_path):
    """Write our proto with one regex substitution applied; return the new path."""
    def make(pattern, replacement, flags=0):
        text = OURS.read_text()
        new_text, count = re.subn(pattern, replacement, text, flags=flags)
        assert count == 1, f"edit {pattern!r} matched {count} times, expected exactly once"
        assert new_text != text
        path = tmp_path / "api.proto"
        path.write_text(new_text)
        return path
    return make


def test_our_proto_matches_upstream():
    rc, out = run_checker()
    assert rc == 0, out
    assert re.search(r"^compared \d+ messages .* against k8s\.io/cri-api v\S+: OK$", out, re.M), out


def test_changed_field_number_is_reported(broken_copy):
    path = broken_copy(r"(\bstring hostname = )2;", r"\g<1>42;")
    rc, out = run_checker("--ours", str(path))
    assert rc == 1, out
    assert "message runtime.v1.PodSandboxConfig field hostname: number 42 != 2" in out, out


def test_removed_rpc_is_reported(broken_copy):
    path = broken_copy(r"^\s*rpc ReopenContainerLog\(.*\n", "", flags=re.M)
    rc, out = run_checker("--ours", str(path))
    assert rc == 1, out
    assert "service runtime.v1.RuntimeService: method ReopenContainerLog missing in ours" in out, out


def test_renumbered_enum_value_is_reported(broken_copy):
    path = broken_copy(r"(\bSANDBOX_NOTREADY = )1;", r"\g<1>7;")
    rc, out = run_checker("--ours", str(path))
    assert rc == 1, out
    assert "enum runtime.v1.PodSandboxState value SANDBOX_NOTREADY: number 7 != 1" in out, out
