"""The socket, its lock, signals and configuration of a real podshimd process."""

import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from podshim.daemon import Podshimd


def run_once(args, timeout=10):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_socket_is_0660_in_a_0700_directory(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(daemon.socket)).st_mode) == 0o700


def test_second_daemon_on_same_socket_exits_nonzero_naming_it(daemon):
    second = Podshimd(daemon.binary, base_dir=daemon.dir)
    proc = run_once(second.args())
    assert proc.returncode != 0
    assert daemon.socket in proc.stderr
    assert "in use" in proc.stderr
    # The first one is untouched and still serves.
    with daemon.client() as c:
        assert c.version().runtime_name == "podshim"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_signal_removes_socket_and_lock(daemon, sig):
    assert os.path.exists(daemon.socket)
    assert daemon.stop(sig) == 0
    assert not os.path.exists(daemon.socket)
    assert not os.path.exists(daemon.socket + ".lock")
    assert "shutting down" in daemon.log()


def test_stale_socket_from_a_crash_is_cleaned(podshimd_path):
    d = Podshimd(podshimd_path)
    try:
        d.start()
        d.stop(signal.SIGKILL)  # a crash: socket and lock file stay behind
        assert os.path.exists(d.socket)
        d.start()
        with d.client() as c:
            assert c.version().runtime_name == "podshim"
    finally:
        d.cleanup()


def test_socket_bound_by_nobody_is_cleaned(podshimd_path):
    d = Podshimd(podshimd_path)
    try:
        os.makedirs(os.path.dirname(d.socket), mode=0o700)
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.socket)
        s.close()  # the file stays; nothing listens
        d.start()
        with d.client() as c:
            assert c.version().runtime_name == "podshim"
    finally:
        d.cleanup()


def test_non_socket_at_socket_path_is_refused_and_kept(podshimd_path):
    d = Podshimd(podshimd_path)
    try:
        os.makedirs(os.path.dirname(d.socket), mode=0o700)
        with open(d.socket, "w") as f:
            f.write("not a socket")
        proc = run_once(d.args())
        assert proc.returncode != 0
        assert d.socket in proc.stderr
        with open(d.socket) as f:
            assert f.read() == "not a socket"
    finally:
        d.cleanup()


def test_config_file_is_used_and_flags_override_it(podshimd_path, tmp_path):
    d = Podshimd(podshimd_path)
    try:
        conf = tmp_path / "podshim.toml"
        conf.write_text(f'socket = "{d.socket}"\n'
                        f'state_dir = "{d.state_dir}"\n'
                        f'root_dir = "{d.dir}/from-file"\n'
                        'log_level = "info"\n'
                        'log_format = "json"\n')
        d.args = lambda: [str(d.binary), f"--config={conf}", f"--root_dir={d.root_dir}"]
        d.start()
        with d.client() as c:
            config = c.info()["config"]
        assert config["root_dir"] == d.root_dir  # the flag wins
        assert config["log_format"] == "json"  # from the file
        assert os.path.isdir(d.root_dir)
        assert not os.path.exists(f"{d.dir}/from-file")
        d.stop()
        lines = [l for l in d.log().splitlines() if l.strip()]
        assert lines
        for line in lines:
            entry = json.loads(line)
            assert {"time", "level", "logger", "msg"} <= set(entry)
    finally:
        d.cleanup()


@pytest.mark.parametrize("content,needle", [
    ('sokcet = "/tmp/x.sock"\n', "sokcet"),
    ('log_level = "loud"\n', "log_level"),
    ('state_dir = "relative"\n', "state_dir"),
    ('socket = \n', "podshim.toml"),
])
def test_bad_config_exits_2_naming_the_problem_and_creates_nothing(podshimd_path, tmp_path,
                                                                   content, needle):
    conf = tmp_path / "podshim.toml"
    conf.write_text(content)
    sock_dir = tmp_path / "run"
    proc = run_once([str(podshimd_path), f"--config={conf}", f"--socket={sock_dir}/p.sock",
                     f"--root_dir={tmp_path}/root"])
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert not sock_dir.exists()
    assert not (tmp_path / "root").exists()


def test_missing_config_file_is_an_error(podshimd_path, tmp_path):
    proc = run_once([str(podshimd_path), f"--config={tmp_path}/nope.toml"])
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr


def test_version_flag(podshimd_path):
    proc = run_once([str(podshimd_path), "--version"])
    assert proc.returncode == 0
    assert proc.stdout.startswith("podshimd 0.")


def test_defaults_need_no_flags_or_config(podshimd_path):
    """Runs with no arguments at all when the default socket is free."""
    if os.path.exists("/run/podshim/podshim.sock.lock"):
        pytest.fail("another podshimd is holding the default socket; stop it before the tests")
    proc = subprocess.Popen([str(podshimd_path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists("/run/podshim/podshim.sock") and time.monotonic() < deadline:
            time.sleep(0.02)
        from podshim import Client
        with Client() as c:
            c.wait_ready(5)
            assert c.version().runtime_name == "podshim"
            assert c.info()["config"]["root_dir"] == "/var/lib/podshim"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0
    assert not os.path.exists("/run/podshim/podshim.sock")


def test_sample_config_in_deploy_is_valid(podshimd_path):
    """deploy/podshim.toml parses; flags given after it move the daemon to private dirs."""
    from podshim.stubs import REPO
    sample = REPO / "deploy" / "podshim.toml"
    d = Podshimd(podshimd_path, extra_args=[f"--config={sample}"])
    try:
        d.start()
        with d.client() as c:
            config = c.info()["config"]
        assert config["socket"] == d.socket
        assert config["log_format"] == "text"
    finally:
        d.cleanup()


def cgroup_mounts_with_favordynmods():
    """The cgroup/cgroup2 mounts whose super options carry favordynmods."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in ("cgroup", "cgroup2") and \
                    "favordynmods" in fields[sep + 3].split(","):
                found.append(fields[4])
    return found


def test_favordynmods_is_on_after_start_and_said_in_the_log(daemon):
    # podshimd turns the kernel's favordynmods cgroup option on (or finds it on),
    # so moving a container into its cgroup does not wait for an RCU grace period.
    assert cgroup_mounts_with_favordynmods(), open("/proc/self/mountinfo").read()
    assert "cgroups: " in daemon.log()
    assert "favordynmods" in daemon.log()
    assert "could not turn on favordynmods" not in daemon.log()


def test_favordynmods_can_be_left_alone(podshimd_path):
    d = Podshimd(podshimd_path, extra_args=["--cgroup_favor_dynmods=false"])
    try:
        d.start()
        with d.client() as c:
            assert c.version().runtime_name == "podshim"
        assert "favordynmods" not in d.log()
    finally:
        d.cleanup()
