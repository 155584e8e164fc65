"""ImageService end to end: pulls from a real docker-registry on 127.0.0.1 into a real
podshimd, then status, list, remove, and what lands on disk."""

import json
import os
import stat
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402
from registry import Registry  # noqa: E402
from slow_proxy import SlowProxy  # noqa: E402

from podshim.daemon import Podshimd  # noqa: E402

BUSYBOX = images.ImageSpec(name="e2e-busybox", cmd=("sh",))
LAYERED = images.ImageSpec(
    name="e2e-layered",
    layers=(
        images.Layer(files={"/data/keep": images.text("keep\n"),
                            "/data/gone": images.text("gone\n"),
                            "/opq/old": images.text("old\n")}),
        images.Layer(whiteouts=("/data/gone",), opaque=("/opq",)),
    ),
    user="1000",
    cmd=("sh",),
)
NAMED_USER = images.ImageSpec(name="e2e-www", user="www-data:1004", cmd=("sh",))


@pytest.fixture(scope="module")
def registry():
    """A registry with the test images: busybox under two names, one layered, one named user."""
    with Registry() as reg:
        refs = {name: images.build_image(spec) for name, spec in
                (("busybox", BUSYBOX), ("layered", LAYERED), ("www", NAMED_USER))}
        images.push(refs["busybox"], f"{reg.addr}/test/busybox:1.0")
        images.push(refs["busybox"], f"{reg.addr}/library/busybox:latest")
        images.push(refs["layered"], f"{reg.addr}/test/layered:v1")
        images.push(refs["www"], f"{reg.addr}/test/www:v1")
        yield reg


@pytest.fixture
def mirrored(podshimd_path, registry, tmp_path):
    """podshimd whose docker.io mirror is the local registry."""
    conf = tmp_path / "podshim.toml"
    conf.write_text('[registry]\nupstream_fallback = false\n[registry.mirrors]\n'
                    f'"docker.io" = ["http://{registry.addr}"]\n')
    d = Podshimd(podshimd_path, extra_args=[f"--config={conf}"])
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


def pull(client, ref, timeout=60):
    return client.image.PullImage(
        client.pb.PullImageRequest(image=client.pb.ImageSpec(image=ref)), timeout=timeout).image_ref


def status(client, ref):
    return client.image.ImageStatus(
        client.pb.ImageStatusRequest(image=client.pb.ImageSpec(image=ref)), timeout=10).image


def test_pull_by_tag_then_status_by_tag_id_and_digest(client, registry):
    ref = f"{registry.addr}/test/busybox:1.0"
    image_id = pull(client, ref)
    assert image_id.startswith("sha256:") and len(image_id) == 71
    img = status(client, ref)
    assert img.id == image_id
    assert list(img.repo_tags) == [ref]
    assert len(img.repo_digests) == 1
    assert img.repo_digests[0].startswith(f"{registry.addr}/test/busybox@sha256:")
    assert img.size > 500_000  # busybox is about a megabyte
    assert status(client, image_id).id == image_id
    assert status(client, img.repo_digests[0]).id == image_id
    assert status(client, image_id[len("sha256:"):][:12]).id == image_id
    # Pulling again is idempotent.
    assert pull(client, ref) == image_id


def test_pull_by_digest(client, registry):
    image_id = pull(client, f"{registry.addr}/test/busybox:1.0")
    digest_ref = status(client, image_id).repo_digests[0]
    client.image.RemoveImage(client.pb.RemoveImageRequest(
        image=client.pb.ImageSpec(image=image_id)), timeout=30)
    assert pull(client, digest_ref) == image_id
    img = status(client, digest_ref)
    assert list(img.repo_digests) == [digest_ref]
    assert list(img.repo_tags) == []  # a digest names no tag
    # tag@digest: the digest decides.
    assert pull(client, f"{registry.addr}/test/busybox:whatever@{digest_ref.split('@')[1]}") \
        == image_id


def test_image_status_of_missing_image_is_empty_not_an_error(client):
    resp = client.image.ImageStatus(
        client.pb.ImageStatusRequest(image=client.pb.ImageSpec(image="nothing/here:1")), timeout=10)
    assert not resp.HasField("image")


def test_list_images_with_and_without_filter(client, registry):
    a = pull(client, f"{registry.addr}/test/busybox:1.0")
    b = pull(client, f"{registry.addr}/test/layered:v1")
    ids = {i.id for i in client.image.ListImages(client.pb.ListImagesRequest(), timeout=10).images}
    assert ids == {a, b}
    flt = client.pb.ImageFilter(image=client.pb.ImageSpec(image=f"{registry.addr}/test/layered:v1"))
    only = client.image.ListImages(client.pb.ListImagesRequest(filter=flt), timeout=10).images
    assert [i.id for i in only] == [b]


def test_stream_images_matches_list_images(client, registry):
    assert list(client.image.StreamImages(client.pb.StreamImagesRequest(), timeout=10)) == []
    a = pull(client, f"{registry.addr}/test/busybox:1.0")
    b = pull(client, f"{registry.addr}/test/layered:v1")
    chunks = list(client.image.StreamImages(client.pb.StreamImagesRequest(), timeout=10))
    streamed = [i for c in chunks for i in c.images]
    listed = client.image.ListImages(client.pb.ListImagesRequest(), timeout=10).images
    assert sorted(i.id for i in streamed) == sorted(i.id for i in listed) == sorted([a, b])
    flt = client.pb.ImageFilter(image=client.pb.ImageSpec(image=b))
    only = list(client.image.StreamImages(client.pb.StreamImagesRequest(filter=flt), timeout=10))
    assert [i.id for c in only for i in c.images] == [b]


def test_user_of_image_is_reported_as_uid_or_username(client, registry):
    pull(client, f"{registry.addr}/test/layered:v1")
    pull(client, f"{registry.addr}/test/www:v1")
    layered = status(client, f"{registry.addr}/test/layered:v1")
    assert layered.HasField("uid") and layered.uid.value == 1000 and layered.username == ""
    www = status(client, f"{registry.addr}/test/www:v1")
    assert not www.HasField("uid") and www.username == "www-data"


def test_layers_land_as_overlay_snapshots_with_whiteouts(daemon, client, registry):
    image_id = pull(client, f"{registry.addr}/test/layered:v1")
    info = client.image.ImageStatus(client.pb.ImageStatusRequest(
        image=client.pb.ImageSpec(image=image_id), verbose=True), timeout=10).info
    diff_ids = json.loads(info["info"])["diffIDs"]
    snaps = [Path(daemon.root_dir, "snapshots", *d.split(":")) for d in diff_ids]
    assert all(s.is_dir() for s in snaps)
    # The second-to-last layer holds the files, the last one the whiteout and opaque dir.
    files, top = snaps[-2], snaps[-1]
    assert (files / "data" / "keep").read_text() == "keep\n"
    gone = os.lstat(top / "data" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(top / "opq", "trusted.overlay.opaque") == b"y"
    # busybox itself is in the base layer.
    assert (snaps[0] / "bin" / "busybox").is_file()


def test_remove_by_tag_removes_image_blobs_and_snapshots(daemon, client, registry):
    ref = f"{registry.addr}/test/layered:v1"
    image_id = pull(client, ref)
    content = Path(daemon.root_dir, "content", "blobs", "sha256")
    assert any(content.iterdir())
    client.image.RemoveImage(client.pb.RemoveImageRequest(image=client.pb.ImageSpec(image=ref)),
                             timeout=30)
    assert not status(client, image_id).id
    assert not any(content.iterdir())
    assert not any(Path(daemon.root_dir, "snapshots", "sha256").iterdir())
    # Removing again is fine.
    client.image.RemoveImage(client.pb.RemoveImageRequest(image=client.pb.ImageSpec(image=ref)),
                             timeout=30)


def test_remove_keeps_layers_another_image_shares(daemon, client, registry):
    pull(client, f"{registry.addr}/test/busybox:1.0")
    layered = pull(client, f"{registry.addr}/test/layered:v1")
    client.image.RemoveImage(client.pb.RemoveImageRequest(
        image=client.pb.ImageSpec(image=layered)), timeout=30)
    busybox = status(client, f"{registry.addr}/test/busybox:1.0")
    assert busybox.id
    # The shared busybox layer is still unpacked.
    snaps = list(Path(daemon.root_dir, "snapshots", "sha256").iterdir())
    assert len(snaps) == 1 and (snaps[0] / "bin" / "busybox").is_file()


def test_short_name_resolves_through_docker_io_mirror(mirrored, registry):
    with mirrored.client() as c:
        image_id = pull(c, "busybox")
        img = status(c, "busybox")
        assert img.id == image_id
        assert list(img.repo_tags) == ["docker.io/library/busybox:latest"]
        assert img.repo_digests[0].startswith("docker.io/library/busybox@sha256:")
        assert status(c, "docker.io/library/busybox:latest").id == image_id


def test_missing_image_is_not_found_naming_it(client, registry):
    ref = f"{registry.addr}/test/nope:1"
    with pytest.raises(grpc.RpcError) as err:
        pull(client, ref)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "test/nope" in err.value.details()


@pytest.mark.parametrize("ref", ["Foo/Bar:1", "busybox:bad tag", "a@sha256:12", ""])
def test_invalid_reference_is_invalid_argument(client, ref):
    with pytest.raises(grpc.RpcError) as err:
        pull(client, ref)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    if ref:
        assert ref in err.value.details()
    else:
        assert "image.image" in err.value.details()


def test_pull_deadline_is_deadline_exceeded_and_leaves_no_partial_download(daemon, client,
                                                                         registry):
    with pytest.raises(grpc.RpcError) as err:
        pull(client, f"{registry.addr}/test/busybox:1.0", timeout=0.001)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # podshimd may have started the pull before the deadline passed; it then goes on in the
    # background for a retry to join. The retry answers once that pull (or a fresh one) is
    # over, and then no half-written download remains.
    assert pull(client, f"{registry.addr}/test/busybox:1.0").startswith("sha256:")
    ingest = Path(daemon.root_dir, "content", "ingest")
    assert not any(ingest.iterdir())


def test_concurrent_pulls_of_one_image_agree(client, registry):
    ref = f"{registry.addr}/test/layered:v1"
    results, errors = [], []

    def go():
        try:
            results.append(pull(client, ref))
        except grpc.RpcError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1


def test_image_fs_info_grows_after_a_pull(client, registry):
    before = client.image.ImageFsInfo(client.pb.ImageFsInfoRequest(), timeout=10)
    pull(client, f"{registry.addr}/test/busybox:1.0")
    after = client.image.ImageFsInfo(client.pb.ImageFsInfoRequest(), timeout=10)
    assert (after.image_filesystems[0].used_bytes.value
            > before.image_filesystems[0].used_bytes.value + 500_000)


@pytest.fixture(scope="module")
def auth_registry():
    """A registry that wants Basic auth (htpasswd, bcrypt) for alice / s3cret."""
    import subprocess
    entry = subprocess.run(["htpasswd", "-Bbn", "alice", "s3cret"], check=True,
                           capture_output=True, text=True).stdout
    with Registry(htpasswd=entry) as reg:
        images.push(images.build_image(BUSYBOX), f"{reg.addr}/private/busybox:1",
                    creds="alice:s3cret")
        yield reg


def pull_with(client, ref, **auth):
    return client.image.PullImage(client.pb.PullImageRequest(
        image=client.pb.ImageSpec(image=ref), auth=client.pb.AuthConfig(**auth)), timeout=60)


def test_basic_auth_registry_with_the_right_password(client, auth_registry):
    ref = f"{auth_registry.addr}/private/busybox:1"
    assert pull_with(client, ref, username="alice", password="s3cret").image_ref
    import base64
    client.image.RemoveImage(client.pb.RemoveImageRequest(image=client.pb.ImageSpec(image=ref)),
                             timeout=30)
    token = base64.b64encode(b"alice:s3cret").decode()
    assert pull_with(client, ref, auth=token).image_ref


@pytest.mark.parametrize("auth", [{"username": "alice", "password": "wrong"}, {}])
def test_basic_auth_registry_refuses_wrong_or_missing_password(daemon, client, auth_registry,
                                                             auth):
    ref = f"{auth_registry.addr}/private/busybox:1"
    with pytest.raises(grpc.RpcError) as err:
        pull_with(client, ref, **auth)
    assert err.value.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                grpc.StatusCode.PERMISSION_DENIED)
    assert "private/busybox" in err.value.details()
    assert "wrong" not in err.value.details()  # no credentials in messages
    assert not status(client, ref).id
    assert not any(Path(daemon.root_dir, "content", "ingest").iterdir())


def test_credentials_from_config(podshimd_path, auth_registry, tmp_path):
    conf = tmp_path / "podshim.toml"
    conf.write_text(f'[registry.auths."{auth_registry.addr}"]\n'
                    'username = "alice"\npassword = "s3cret"\n')
    d = Podshimd(podshimd_path, extra_args=[f"--config={conf}"])
    try:
        d.start()
        with d.client() as c:
            assert pull(c, f"{auth_registry.addr}/private/busybox:1")
            assert "s3cret" not in json.dumps(c.info())
    finally:
        d.cleanup()


def test_pull_cancelled_midway_leaves_nothing(daemon, client, registry):
    proxy = SlowProxy(registry.addr)
    try:
        ref = f"{proxy.addr}/test/busybox:1.0"
        fut = client.image.PullImage.future(
            client.pb.PullImageRequest(image=client.pb.ImageSpec(image=ref)), timeout=60)
        assert proxy.started_blob.wait(20), "no blob transfer started"
        time.sleep(0.3)  # some bytes of the layer are in the ingest now
        fut.cancel()
        with pytest.raises(grpc.FutureCancelledError):
            fut.result()
        # The server notices the cancel, stops the transfer and drops the partial blob.
        root = Path(daemon.root_dir)
        deadline = time.monotonic() + 15
        while any((root / "content" / "ingest").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any((root / "content" / "ingest").iterdir())
        assert not status(client, ref).id
        assert not any((root / "snapshots" / "sha256").iterdir())
        assert not list((root / "images").glob("*.json"))
        # Blobs the pull had committed (its config) are collected too.
        while any((root / "content" / "blobs" / "sha256").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any((root / "content" / "blobs" / "sha256").iterdir())
        assert "CANCELLED" in daemon.log() or "cancel" in daemon.log().lower()
    finally:
        proxy.close()


def test_agent_killed_mid_pull_restarts_clean_and_pulls_again(podshimd_path, registry):
    """SIGKILL of podshimd while a layer is half downloaded: after a restart no partial blob,
    temp snapshot or record is left, and the same pull then succeeds."""
    import signal
    proxy = SlowProxy(registry.addr)
    d = Podshimd(podshimd_path)
    try:
        d.start()
        ref = f"{proxy.addr}/test/busybox:1.0"
        with d.client() as c:
            fut = c.image.PullImage.future(
                c.pb.PullImageRequest(image=c.pb.ImageSpec(image=ref)), timeout=60)
            assert proxy.started_blob.wait(20), "no blob transfer started"
            time.sleep(0.3)
            root = Path(d.root_dir)
            assert any((root / "content" / "ingest").iterdir()), "expected a partial download"
            d.stop(signal.SIGKILL)
            with pytest.raises(grpc.RpcError):
                fut.result()
        d.start()
        assert not any((root / "content" / "ingest").iterdir())
        assert not any((root / "content" / "blobs" / "sha256").iterdir())
        assert not [p for p in (root / "snapshots" / "sha256").iterdir() if p.name.startswith(".")]
        with d.client() as c:
            assert not status(c, ref).id
            assert pull(c, f"{registry.addr}/test/busybox:1.0")
    finally:
        d.cleanup()
        proxy.close()


@pytest.mark.parametrize("cap,key", [("--max_layer_bytes=65536", "max_layer_bytes"),
                                     ("--max_layer_entries=5", "max_layer_entries")])
def test_a_layer_beyond_the_caps_is_refused_and_nothing_is_kept(podshimd_path, registry, cap,
                                                                 key):
    """The busybox stand-in's layer unpacks to ~1.5 MB in dozens of entries: with the caps set
    below that, the pull is RESOURCE_EXHAUSTED naming the key (against compression and tar
    bombs), and no image, snapshot or partial download is kept. (The module's daemon, with the
    default caps, pulls the same image in the tests above.)"""
    d = Podshimd(podshimd_path, extra_args=[cap])
    try:
        d.start()
        with d.client() as c:
            ref = f"{registry.addr}/test/busybox:1.0"
            with pytest.raises(grpc.RpcError) as e:
                pull(c, ref)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value
            assert key in e.value.details(), e.value.details()
            assert not status(c, ref).id
            root = Path(d.root_dir)
            # Only the digest algorithms' directories (sha256/, sha512/), empty.
            snapshots = root / "snapshots"
            leftovers = [p for p in snapshots.rglob("*") if p.parent != snapshots]
            assert not leftovers, leftovers
            assert not any((root / "content" / "ingest").iterdir())
            assert not list((root / "images").glob("*.json"))
            blobs = root / "content" / "blobs" / "sha256"
            assert not blobs.exists() or not any(blobs.iterdir()), list(blobs.iterdir())
    finally:
        d.cleanup()
