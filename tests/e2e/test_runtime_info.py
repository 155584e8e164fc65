"""Version, Status and RuntimeConfig over the real socket, and UNIMPLEMENTED for the rest."""

import grpc
import pytest


def test_version_names_podshim_and_cri_v1(client):
    v = client.version()
    assert v.runtime_name == "podshim"
    assert v.runtime_api_version == "v1"
    assert v.version == "0.1.0"
    assert v.runtime_version.count(".") == 2


def test_status_reports_both_conditions(client):
    conds = client.conditions()
    assert set(conds) == {"RuntimeReady", "NetworkReady"}
    assert conds["RuntimeReady"].status is True
    # Pod networking has not landed yet: not ready, with a reason that says why.
    assert conds["NetworkReady"].status is False
    assert conds["NetworkReady"].reason == "NetworkPluginNotReady"
    assert conds["NetworkReady"].message


def test_status_verbose_info_carries_effective_config(daemon, client):
    info = client.info()
    config = info["config"]
    assert config["socket"] == daemon.socket
    assert config["state_dir"] == daemon.state_dir
    assert config["root_dir"] == daemon.root_dir
    assert config["log_level"] == "debug"
    # Without verbose, no info map.
    assert dict(client.status(verbose=False).info) == {}


def test_image_fs_info_reports_measured_usage(daemon, client):
    resp = client.image.ImageFsInfo(client.pb.ImageFsInfoRequest(), timeout=5)
    assert [f.fs_id.mountpoint for f in resp.image_filesystems] == [daemon.root_dir + "/snapshots"]
    assert [f.fs_id.mountpoint for f in resp.container_filesystems] == [
        daemon.root_dir + "/containers"]
    before = resp.image_filesystems[0]
    assert before.inodes_used.value >= 1  # the directory itself, and its layout
    with open(daemon.root_dir + "/snapshots/blob", "wb") as f:
        f.write(b"x" * 300_000)
    after = client.image.ImageFsInfo(client.pb.ImageFsInfoRequest(), timeout=5).image_filesystems[0]
    assert after.inodes_used.value == before.inodes_used.value + 1
    assert after.used_bytes.value - before.used_bytes.value >= 300_000
    assert after.timestamp >= before.timestamp > 0


def test_runtime_config_reports_cgroupfs(client):
    assert client.cgroup_driver() == "CGROUPFS"


@pytest.mark.parametrize("service,method,request_type", [
    ("runtime", "Exec", "ExecRequest"),
    ("runtime", "Attach", "AttachRequest"),
    ("runtime", "PortForward", "PortForwardRequest"),
    ("runtime", "CheckpointContainer", "CheckpointContainerRequest"),
])
def test_rpcs_not_built_yet_answer_unimplemented_naming_themselves(client, service, method,
                                                                    request_type):
    stub = getattr(client, service)
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(getattr(client.pb, request_type)(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert method in err.value.details()


def test_streaming_rpc_not_built_yet_answers_unimplemented(client):
    stream = client.runtime.StreamPodSandboxes(client.pb.StreamPodSandboxesRequest(), timeout=5)
    with pytest.raises(grpc.RpcError) as err:
        list(stream)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "StreamPodSandboxes" in err.value.details()


def test_method_outside_the_cri_is_unimplemented(client):
    call = client.channel.unary_unary("/runtime.v1.RuntimeService/NoSuchMethod",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_each_rpc_is_logged_once_with_duration_and_code(daemon, client):
    client.version()
    with pytest.raises(grpc.RpcError):
        client.runtime.Attach(client.pb.AttachRequest(), timeout=5)
    log = daemon.log()
    assert "[rpc] RuntimeService/Version OK" in log
    lines = [l for l in log.splitlines() if "RuntimeService/Attach UNIMPLEMENTED" in l]
    assert len(lines) == 1, log
    assert "warn" in lines[0] and "ms" in lines[0]
