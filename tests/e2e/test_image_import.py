"""`podshimd import`: OCI layouts, OCI archives and Docker archives into the store, no registry."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import images  # noqa: E402

from podshim.daemon import Podshimd  # noqa: E402

SPEC = images.ImageSpec(
    name="e2e-import",
    layers=(images.Layer(files={"/etc/motd": images.text("imported\n")}),),
    user="1000",
    cmd=("sh",),
)


@pytest.fixture(scope="module")
def layout():
    """An OCI layout (from umoci; its ref.name annotation is the bare tag 'image')."""
    return images.build_image(SPEC).rsplit(":", 1)[0]


def run_import(d, source, *extra):
    return subprocess.run([str(d.binary), f"--socket={d.socket}", f"--state_dir={d.state_dir}",
                           f"--root_dir={d.root_dir}", "import", str(source), *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh(podshimd_path):
    d = Podshimd(podshimd_path)
    yield d
    d.cleanup()


def status(d, ref):
    with d.client() as c:
        return c.image.ImageStatus(c.pb.ImageStatusRequest(image=c.pb.ImageSpec(image=ref)),
                                   timeout=10).image


def test_oci_layout_with_a_name(fresh, layout):
    proc = run_import(fresh, layout, "--name=example.com/demo/busybox:1")
    assert proc.returncode == 0, proc.stderr
    assert "imported sha256:" in proc.stdout
    fresh.start()
    img = status(fresh, "example.com/demo/busybox:1")
    assert img.id.startswith("sha256:")
    assert list(img.repo_tags) == ["example.com/demo/busybox:1"]
    assert img.uid.value == 1000
    motd = list(Path(fresh.root_dir, "snapshots", "sha256").glob("*/etc/motd"))
    assert [p.read_text() for p in motd] == ["imported\n"]


def test_a_bare_tag_is_no_name(fresh, layout):
    proc = run_import(fresh, layout)
    assert proc.returncode == 1
    assert "--name" in proc.stderr
    assert not list(Path(fresh.root_dir, "images").glob("*.json"))


def test_oci_archive(fresh, layout, tmp_path):
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            if entry != ".complete":
                tar.add(os.path.join(layout, entry), arcname=entry)
    proc = run_import(fresh, archive, "--name=demo/app:v1")
    assert proc.returncode == 0, proc.stderr
    fresh.start()
    assert list(status(fresh, "docker.io/demo/app:v1").repo_tags) == ["docker.io/demo/app:v1"]
    # The unpacked copy of the archive is gone.
    assert not list(Path(fresh.root_dir).glob("import-*"))


def test_docker_archive_names_itself(fresh, layout, tmp_path):
    archive = tmp_path / "docker.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{layout}:image",
                    f"docker-archive:{archive}:demo/web:v2"], check=True, timeout=120)
    proc = run_import(fresh, archive)
    assert proc.returncode == 0, proc.stderr
    fresh.start()
    img = status(fresh, "demo/web:v2")
    assert list(img.repo_tags) == ["docker.io/demo/web:v2"]
    assert img.uid.value == 1000


def test_refused_while_podshimd_serves(fresh, layout):
    fresh.start()
    proc = run_import(fresh, layout, "--name=demo/app:v1")
    assert proc.returncode == 1
    assert fresh.socket in proc.stderr


def test_corrupt_blob_is_refused_and_nothing_is_kept(fresh, layout, tmp_path):
    copy = tmp_path / "layout"
    shutil.copytree(layout, copy)
    # Flip a byte of the biggest blob (the busybox layer).
    blob = max((p for p in (copy / "blobs" / "sha256").iterdir()), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    proc = run_import(fresh, copy, "--name=demo/bad:1")
    assert proc.returncode == 1
    assert blob.name in proc.stderr
    assert not list(Path(fresh.root_dir, "images").glob("*.json"))
    assert not any(Path(fresh.root_dir, "content", "ingest").iterdir())
    assert not list(Path(fresh.root_dir, "content", "blobs", "sha256").glob(blob.name))
