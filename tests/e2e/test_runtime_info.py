"""Version, Status and RuntimeConfig over the real socket, and UNIMPLEMENTED for the rest."""

import json
from pathlib import Path

import grpc
import pytest

from podshim.daemon import Podshimd


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
    # The daemon's CNI config dir is empty: podshim's embedded default network, whose
    # plugins (podshim-bridge, podshim-ipam) are built beside podshimd.
    assert conds["NetworkReady"].status is True, conds["NetworkReady"]
    assert client.info()["config"]["cni"]["default_network"] is True


def test_network_not_ready_when_turned_off(podshimd_path):
    with Podshimd(podshimd_path, extra_args=["--cni=false"]) as d, d.client() as c:
        cond = c.conditions()["NetworkReady"]
        assert cond.status is False
        assert cond.reason == "NetworkPluginNotReady"
        assert "turned off" in cond.message


def test_network_readiness_follows_the_config_dir(podshimd_path):
    """A broken config file: not ready, naming the file; a valid one dropped in beside it
    (sorting first) makes the network ready without a restart."""
    with Podshimd(podshimd_path) as d, d.client() as c:
        Path(d.cni_conf_dir, "20-broken.conflist").write_text("{not json")
        cond = c.conditions()["NetworkReady"]
        assert cond.status is False
        assert "20-broken.conflist" in cond.message, cond.message
        # A network whose plugin is not installed is not ready either, and says which.
        Path(d.cni_conf_dir, "15-missing.conf").write_text(json.dumps(
            {"cniVersion": "1.0.0", "name": "missing", "type": "no-such-plugin"}))
        cond = c.conditions()["NetworkReady"]
        assert cond.status is False
        assert "no-such-plugin" in cond.message, cond.message
        Path(d.cni_conf_dir, "10-good.conflist").write_text(json.dumps(
            {"cniVersion": "1.0.0", "name": "good", "plugins": [{"type": "bridge"}]}))
        assert c.conditions()["NetworkReady"].status is True


def test_update_runtime_config_checks_the_pod_cidr(client):
    pb = client.pb
    req = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.244.1.0/24")))
    client.runtime.UpdateRuntimeConfig(req, timeout=5)
    bad = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.244.1.0/99")))
    with pytest.raises(grpc.RpcError) as e:
        client.runtime.UpdateRuntimeConfig(bad, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod_cidr" in e.value.details()


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
    ("runtime", "CheckpointContainer", "CheckpointContainerRequest"),
    ("runtime", "UpdatePodSandboxResources", "UpdatePodSandboxResourcesRequest"),
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
        client.runtime.CheckpointContainer(client.pb.CheckpointContainerRequest(), timeout=5)
    log = daemon.log()
    assert "[rpc] RuntimeService/Version OK" in log
    lines = [l for l in log.splitlines() if "RuntimeService/CheckpointContainer UNIMPLEMENTED" in l]
    assert len(lines) == 1, log
    assert "warn" in lines[0] and "ms" in lines[0]
