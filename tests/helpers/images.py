#!/usr/bin/env python3
"""Small OCI test images, built offline and pushed to a local registry.

Images are built from Debian's busybox-static with umoci (no Docker, no
internet): a busybox base layer (applets as *hard links* in /bin, a passwd and
group like the official busybox image's), plus optional extra layers (files,
whiteouts, opaque directories) and an image config (cmd, entrypoint, user,
env, workdir, labels). Where a stand-in needs a real program (pause, nginx,
nonewprivs) it is a small C file from tests/helpers/images-src/, compiled with
``gcc -static``.

The base "busybox-dyn" uses Debian's *dynamic* busybox instead (the `busybox`
package, which conflicts with busybox-static: deploy/setup.sh only downloads it
and extracts its binary to <tools>/busybox-dyn/busybox), plus the shared
libraries it needs and the ELF interpreter, copied from this machine. Its shell
execs applets rather than running them in-process (busybox-static has
SH_STANDALONE and PREFER_APPLETS), so a masked /bin/ls cannot run: critest's
MaskedPaths spec needs that. Only critest's busybox stand-in
("critest-busybox") uses it.

Built OCI layouts are cached under a cache dir (default <repo>/build/test-images,
git-ignored), keyed by a hash of every input (spec, busybox binary, shared
libraries, C sources, BUILDER_VERSION), so a rerun only pushes.

The critest stand-ins and the table of original reference -> local reference
are at the bottom (CRITEST_IMAGES); ``push_critest_images(addr)`` pushes them.
``mirror_hosts()`` lists the registries whose references are rewritten, for
generating a runtime's registry-mirror configuration from the same table.

Environment: PODSHIM_TEST_BUSYBOX=/path/to/static/busybox replaces Debian's
/bin/busybox in the "busybox" base (Debian's is built with SH_STANDALONE and
PREFER_APPLETS, so ``sh -c ls`` never execs /bin/ls; see
tests/critest/README.md). PODSHIM_TOOLS moves the tools dir (default
<repo>/.tools) where the "busybox-dyn" base finds busybox-dyn/busybox.

Command line::

    python3 tests/helpers/images.py build            # build/cache all stand-ins
    python3 tests/helpers/images.py push 127.0.0.1:5000
    python3 tests/helpers/images.py table 127.0.0.1:5000
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Iterable

HELPERS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HELPERS_DIR))
SRC_DIR = os.path.join(HELPERS_DIR, "images-src")
DEFAULT_CACHE = os.path.join(REPO, "build", "test-images")
TAG = "image"  # tag inside each cached OCI layout

# Bump when the way images are built changes (invalidates the cache).
BUILDER_VERSION = "7"

# Bases with busybox in them; "scratch" is the other base.
BUSYBOX_BASES = ("busybox", "busybox-dyn")

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Image description
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class File:
    """One filesystem entry of a layer.

    kind: "file" (content: str/bytes), "dir", "symlink" (target), "hardlink"
    (target = path inside the same layer), "program" (program = name of a C
    file in images-src/ without .c, compiled static).
    """
    kind: str = "file"
    content: str | bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    program: str = ""

    def key(self) -> dict:
        d = dataclasses.asdict(self)
        if isinstance(self.content, bytes):
            d["content"] = hashlib.sha256(self.content).hexdigest()
        return d


def text(content: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> File:
    return File("file", content, mode, uid, gid)


def script(content: str) -> File:
    return File("file", content, 0o755)


def directory(mode: int = 0o755, uid: int = 0, gid: int = 0) -> File:
    return File("dir", b"", mode, uid, gid)


def program(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> File:
    return File("program", b"", mode, uid, gid, program=name)


@dataclass(frozen=True)
class Layer:
    files: dict = field(default_factory=dict)  # path -> File
    whiteouts: tuple = ()                       # paths removed by this layer
    opaque: tuple = ()                          # directories made opaque (--opaque insert)

    def key(self) -> dict:
        return {"files": {p: f.key() for p, f in sorted(self.files.items())},
                "whiteouts": list(self.whiteouts), "opaque": list(self.opaque)}


@dataclass(frozen=True)
class ImageSpec:
    """A test image: a base + layers + config.

    base: "busybox" (Debian's busybox-static), "busybox-dyn" (Debian's dynamic
    busybox and its shared libraries; its sh execs applets) or "scratch"
    (nothing)."""
    name: str
    description: str = ""
    base: str = "busybox"            # "busybox", "busybox-dyn" or "scratch"
    layers: tuple = ()               # tuple[Layer]
    cmd: tuple | None = None
    entrypoint: tuple | None = None
    user: str | None = None
    env: tuple = (DEFAULT_PATH_ENV,)
    workdir: str | None = None
    labels: tuple = ()               # ("k=v", ...)
    exposed_ports: tuple = ()        # ("80/tcp", ...)
    stop_signal: str | None = None

    def key(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items()
             if k not in ("layers", "description")}
        d["layers"] = [layer.key() for layer in self.layers]
        return d


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------

def busybox_path() -> str:
    """The static busybox of the "busybox" base."""
    return os.environ.get("PODSHIM_TEST_BUSYBOX", "/bin/busybox")


def dynamic_busybox_path() -> str:
    """The dynamic busybox of the "busybox-dyn" base (deploy/setup.sh puts it there)."""
    tools = os.environ.get("PODSHIM_TOOLS", os.path.join(REPO, ".tools"))
    return os.path.join(tools, "busybox-dyn", "busybox")


def _elf_interpreter(path: str) -> str | None:
    """The program interpreter an ELF file names (PT_INTERP), None if it names none."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ImageBuildError(f"{path} is not an ELF file")
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    phoff, phentsize, phnum = (
        (struct.unpack_from(end + "Q", data, 0x20)[0], *struct.unpack_from(end + "HH", data, 0x36))
        if is64 else
        (struct.unpack_from(end + "I", data, 0x1C)[0], *struct.unpack_from(end + "HH", data, 0x2A)))
    for i in range(phnum):
        ph = phoff + i * phentsize
        if struct.unpack_from(end + "I", data, ph)[0] != 3:  # PT_INTERP
            continue
        offset, size = ((struct.unpack_from(end + "Q", data, ph + 8)[0],
                         struct.unpack_from(end + "Q", data, ph + 32)[0]) if is64 else
                        (struct.unpack_from(end + "I", data, ph + 4)[0],
                         struct.unpack_from(end + "I", data, ph + 16)[0]))
        return data[offset:offset + size].rstrip(b"\0").decode()
    return None


def _shared_libraries(binary: str) -> list[tuple[str, str]]:
    """(path in the image, file on this machine) for every shared library that
    `ldd` resolves for binary, plus the ELF interpreter at the path the binary
    names. Both are copied at the same paths, where the loader looks."""
    interp = _elf_interpreter(binary)
    if interp is None:
        return []
    out = [(interp, interp)]
    for line in _run(["ldd", binary]).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$", line)
        if not m:
            continue  # linux-vdso.so.1, the interpreter itself
        if not m.group(2).startswith("/"):
            raise ImageBuildError(f"ldd {binary}: {m.group(1)} {m.group(2)}")
        if m.group(2) not in (inside for inside, _ in out):
            out.append((m.group(2), m.group(2)))
    return out


def _base_files(base: str) -> list[tuple[str, str]]:
    """(path in the image, file on this machine) of what a base copies in; the
    busybox binary comes first, at /bin/busybox."""
    if base == "busybox":
        return [("/bin/busybox", busybox_path())]
    if base == "busybox-dyn":
        bb = dynamic_busybox_path()
        if not os.access(bb, os.X_OK):
            raise ImageBuildError(
                f"{bb} is missing or not executable: the busybox-dyn base (critest's busybox stand-in) needs "
                "Debian's dynamic busybox; run deploy/setup.sh, which downloads it")
        return [("/bin/busybox", bb), *_shared_libraries(bb)]
    if base == "scratch":
        return []
    raise ImageBuildError(f"unknown base {base!r}")


def _base_key(base: str) -> str:
    """A hash of a base's inputs: the builder, the base, each file's path and content."""
    h = hashlib.sha256()
    h.update(f"{BUILDER_VERSION}\0{base}\0".encode())
    for inside, host in _base_files(base):
        h.update(f"{inside}\0{_sha256_file(host)}\0".encode())
    return h.hexdigest()


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise ImageBuildError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}")
    return p


def _programs_used(spec: ImageSpec) -> list[str]:
    return sorted({f.program for layer in spec.layers for f in layer.files.values()
                   if f.kind == "program"})


def _input_hash(spec: ImageSpec) -> str:
    h = hashlib.sha256()
    h.update(BUILDER_VERSION.encode())
    h.update(json.dumps(spec.key(), sort_keys=True).encode())
    h.update(_base_key(spec.base).encode())
    for prog in _programs_used(spec):
        h.update(prog.encode())
        h.update(_sha256_file(os.path.join(SRC_DIR, prog + ".c")).encode())
    return h.hexdigest()


def compile_program(name: str, cache_dir: str) -> str:
    """gcc -static images-src/NAME.c, cached by source hash; returns the binary."""
    src = os.path.join(SRC_DIR, name + ".c")
    digest = _sha256_file(src)[:16]
    out = os.path.join(cache_dir, "bin", f"{name}-{digest}")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = f"{out}.tmp{os.getpid()}"
        _run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", tmp, src])
        os.replace(tmp, out)
    return out


def _busybox_rootfs(root: str, base: str) -> None:
    """The base layer: busybox (with, for busybox-dyn, its shared libraries and
    the ELF interpreter) + hard-linked applets + minimal /etc."""
    files = _base_files(base)
    bb = files[0][1]
    for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
                    ("proc", 0o555), ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777),
                    ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                    ("var", 0o755), ("var/spool", 0o755), ("var/spool/mail", 0o755),
                    ("var/www", 0o755)):
        p = os.path.join(root, d)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
    for inside, host in files:
        d = root
        for part in os.path.dirname(inside).strip("/").split("/"):  # e.g. /lib64
            d = os.path.join(d, part)
            if not os.path.isdir(d):
                os.mkdir(d)
                os.chmod(d, 0o755)
        dest = os.path.join(root, inside.lstrip("/"))
        shutil.copyfile(host, dest)  # the content, also where host is a symlink
        os.chmod(dest, 0o755)
    target = os.path.join(root, "bin", "busybox")
    applets = _run([bb, "--list"]).stdout.split()
    for a in applets:
        if a in ("busybox",) or "/" in a:
            continue
        link = os.path.join(root, "bin", a)
        if not os.path.exists(link):
            os.link(target, link)
    # Applets critest needs that Debian's busybox lacks (both builds): small scripts.
    for name, body in FALLBACK_APPLETS.items():
        if name not in applets:
            p = os.path.join(root, "bin", name)
            with open(p, "w") as f:
                f.write(body)
            os.chmod(p, 0o755)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write(GROUP)
    os.chmod(os.path.join(root, "etc", "passwd"), 0o644)
    os.chmod(os.path.join(root, "etc", "group"), 0o644)


# Used only when the busybox binary has no such applet.
FALLBACK_APPLETS = {
    # pgrep [-f] PATTERN: pids whose name (or, with -f, command line) matches.
    "pgrep": r"""#!/bin/sh
# podshim test image stand-in for pgrep (busybox without the pgrep applet)
full=0
if [ "$1" = "-f" ]; then full=1; shift; fi
[ $# -eq 1 ] || { echo "usage: pgrep [-f] PATTERN" >&2; exit 2; }
found=1
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  if [ $full = 1 ]; then
    name=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  else
    read -r name < "$d/comm" 2>/dev/null || continue
  fi
  [ -n "$name" ] || continue
  if echo "$name" | grep -qE -- "$1"; then echo "$pid"; found=0; fi
done
exit $found
""",
    # ipcs [-m]: the shared memory segments of the caller's IPC namespace.
    "ipcs": r"""#!/bin/sh
# podshim test image stand-in for ipcs -m (busybox without the ipcs applet)
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
[ -r /proc/sysvipc/shm ] || exit 0
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do
  printf '0x%08x %-10s %-10s %-10s %-10s %-10s\n' "$key" "$shmid" "$uid" "$perms" "$size" "$nattch"
done
""",
}

# As in the official busybox image.
PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""


def _layer_tar(layer: Layer, cache_dir: str) -> bytes:
    """The layer as an uncompressed tar stream, written here rather than by
    `umoci insert` (umoci 0.4.7's insert ends the stream without the last
    entry's padding and the end-of-archive blocks: a truncated layer)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, kind, mode=0o755, uid=0, gid=0, data=b"", target=""):
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 0
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, target
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, target
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        listed = {p.strip("/") for p in layer.files}
        made = set()

        def parents(rel):
            parts = rel.split("/")[:-1]
            for n in range(1, len(parts) + 1):
                d = "/".join(parts[:n])
                if d not in made and d not in listed:
                    made.add(d)
                    add(d, "dir")

        for path, f in sorted(layer.files.items(), key=lambda kv: (kv[0].count("/"), kv[0])):
            rel = path.strip("/")
            parents(rel)
            if f.kind == "dir":
                add(rel, "dir", f.mode, f.uid, f.gid)
            elif f.kind == "file":
                data = f.content.encode() if isinstance(f.content, str) else f.content
                add(rel, "file", f.mode, f.uid, f.gid, data)
            elif f.kind == "program":
                with open(compile_program(f.program, cache_dir), "rb") as prog:
                    add(rel, "file", f.mode, f.uid, f.gid, prog.read())
            elif f.kind in ("symlink", "hardlink"):
                add(rel, f.kind, 0o777, f.uid, f.gid, target=f.target.lstrip("/")
                    if f.kind == "hardlink" else f.target)
            else:
                raise ImageBuildError(f"unknown file kind {f.kind!r} for {path}")
            made.add(rel)
        for d in layer.opaque:
            rel = d.strip("/")
            parents(rel + "/x")
            add(f"{rel}/.wh..wh..opq", "file", 0o644)
        for w in layer.whiteouts:
            rel = w.strip("/")
            parents(rel)
            head, _, name = rel.rpartition("/")
            add(f"{head}/.wh.{name}" if head else f".wh.{name}", "file", 0o644)
    return buf.getvalue()


def _append_layer(layout: str, tag: str, layer: Layer, cache_dir: str, created_by: str) -> None:
    """Appends `layer` (gzip) to the image `tag` of the OCI layout: new layer
    blob, config (diff_ids, history) and manifest, index entry updated."""
    import gzip

    def blob_path(digest):
        return os.path.join(layout, "blobs", *digest.split(":"))

    def write_blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(blob_path(digest), "wb") as out:
            out.write(data)
        return digest

    def read_json(digest):
        with open(blob_path(digest)) as f:
            return json.load(f)

    tar = _layer_tar(layer, cache_dir)
    compressed = gzip.compress(tar, mtime=0)
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = read_json(entry["digest"])
    config = read_json(manifest["config"]["digest"])
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"].setdefault("diff_ids", []).append(
        "sha256:" + hashlib.sha256(tar).hexdigest())
    config.setdefault("history", []).append({"created_by": created_by})
    config_bytes = json.dumps(config).encode()
    manifest["config"] = {**manifest["config"], "digest": write_blob(config_bytes),
                          "size": len(config_bytes)}
    manifest.setdefault("layers", []).append({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": write_blob(compressed), "size": len(compressed)})
    manifest_bytes = json.dumps(manifest).encode()
    entry["digest"], entry["size"] = write_blob(manifest_bytes), len(manifest_bytes)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)


def _base_layout(cache_dir: str, base: str) -> str:
    """Cached layout holding only the base layer of a busybox base (a blob the
    images on that base share)."""
    key = _base_key(base)
    path = os.path.join(cache_dir, "layouts", f"_{base}-base-{key[:16]}")
    if os.path.exists(os.path.join(path, ".complete")):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="_base.", dir=os.path.dirname(path))
    try:
        layout = os.path.join(tmp, "layout")
        _run(["umoci", "init", "--layout", layout])
        _run(["umoci", "new", "--image", f"{layout}:{TAG}"])
        root = os.path.join(tmp, "rootfs")
        os.makedirs(root)
        _busybox_rootfs(root, base)
        _run(["umoci", "insert", "--image", f"{layout}:{TAG}",
              "--history.created_by", f"podshim test images: {base} base", root, "/"])
        open(os.path.join(layout, ".complete"), "w").close()
        _install(layout, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _install(tmp_layout: str, path: str) -> None:
    try:
        os.rename(tmp_layout, path)
    except OSError:
        if not os.path.exists(os.path.join(path, ".complete")):
            raise
    # Drop stale builds of the same image (other input hashes).
    parent, base = os.path.split(path)
    stem = re.escape(base[:-17])
    for other in os.listdir(parent):
        if other != base and re.fullmatch(stem + r"-[0-9a-f]{16}", other):
            shutil.rmtree(os.path.join(parent, other), ignore_errors=True)


def build_image(spec: ImageSpec, cache_dir: str = DEFAULT_CACHE) -> str:
    """Builds spec (or finds it in the cache); returns "LAYOUT:TAG" for oci: transport."""
    key = _input_hash(spec)
    path = os.path.join(cache_dir, "layouts", f"{spec.name}-{key[:16]}")
    if os.path.exists(os.path.join(path, ".complete")):
        return f"{path}:{TAG}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"_{spec.name}.", dir=os.path.dirname(path))
    try:
        layout = os.path.join(tmp, "layout")
        if spec.base in BUSYBOX_BASES:
            shutil.copytree(_base_layout(cache_dir, spec.base), layout)
            os.remove(os.path.join(layout, ".complete"))
        elif spec.base == "scratch":
            _run(["umoci", "init", "--layout", layout])
            _run(["umoci", "new", "--image", f"{layout}:{TAG}"])
        else:
            raise ImageBuildError(f"unknown base {spec.base!r}")
        ref = f"{layout}:{TAG}"
        for i, layer in enumerate(spec.layers):
            _append_layer(layout, TAG, layer, cache_dir,
                          f"podshim test images: {spec.name} layer {i}")
        cfg = ["umoci", "config", "--image", ref, "--clear=config.cmd",
               "--clear=config.entrypoint", "--clear=config.env"]
        for a in spec.cmd or ():
            cfg += ["--config.cmd", a]
        for a in spec.entrypoint or ():
            cfg += ["--config.entrypoint", a]
        for e in spec.env:
            cfg += ["--config.env", e]
        if spec.user is not None:
            cfg += ["--config.user", spec.user]
        if spec.workdir is not None:
            cfg += ["--config.workingdir", spec.workdir]
        for lbl in spec.labels:
            cfg += ["--config.label", lbl]
        for p in spec.exposed_ports:
            cfg += ["--config.exposedports", p]
        if spec.stop_signal:
            cfg += ["--config.stopsignal", spec.stop_signal]
        _run(cfg)
        _run(["umoci", "gc", "--layout", layout])
        open(os.path.join(layout, ".complete"), "w").close()
        _install(layout, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"{path}:{TAG}"


def push(oci_ref: str, dest: str, creds: str | None = None) -> None:
    """skopeo copy oci:LAYOUT:TAG docker://DEST (plain HTTP registry); creds "user:pass"."""
    auth = ["--dest-creds", creds] if creds else []
    _run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", *auth,
          f"oci:{oci_ref}", f"docker://{dest}"])


# --------------------------------------------------------------------------
# Stand-ins for the images critest v1.37.0 uses
# --------------------------------------------------------------------------

def _marker(name: str) -> Layer:
    """Like cri-tools' images/image-test: `ADD ${TEST} ${TEST}` (an empty file)."""
    return Layer(files={f"/{name}": text("")})


def _goarch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


NGINX_HTML = "<html><body><h1>Welcome to nginx!</h1><p>podshim test stand-in</p></body></html>\n"

STANDINS: dict[str, ImageSpec] = {s.name: s for s in [
    ImageSpec("busybox", "busybox (Debian busybox-static), cmd sh", cmd=("sh",)),
    ImageSpec(
        "critest-busybox",
        "critest's busybox: Debian's dynamic busybox and its shared libraries, cmd sh; "
        "its sh execs applets, so a masked /bin/ls cannot run (the MaskedPaths spec)",
        base="busybox-dyn", cmd=("sh",)),
    ImageSpec(
        "pause",
        "pause: static C program sleeping in pause(), reaping children, exit 0 on "
        "SIGTERM/SIGINT; no busybox; user 65535:65535 like upstream",
        base="scratch",
        layers=(Layer(files={"/pause": program("pause")}),),
        entrypoint=("/pause",), user="65535:65535", env=(DEFAULT_PATH_ENV,)),
    ImageSpec(
        "nginx",
        "nginx: /usr/sbin/nginx is a static C stand-in (process name nginx, argv "
        "'nginx: master process ...', pid in /var/run/nginx.pid) running busybox "
        "httpd on :80 serving /usr/share/nginx/html",
        layers=(Layer(files={
            "/usr/sbin/nginx": program("nginx"),
            "/usr/share/nginx/html/index.html": text(NGINX_HTML),
            "/var/run": directory(),
            "/etc/nginx/listen-port": text("80\n"),
        }),),
        cmd=("nginx", "-g", "daemon off;"), exposed_ports=("80/tcp",)),
    ImageSpec(
        "hostnet-nginx",
        "hostnet-nginx: the nginx stand-in listening on :12003 (critest uses it "
        "with host networking)",
        layers=(Layer(files={
            "/usr/sbin/nginx": program("nginx"),
            "/usr/share/nginx/html/index.html": text(NGINX_HTML),
            "/var/run": directory(),
            "/etc/nginx/listen-port": text("12003\n"),
        }),),
        cmd=("nginx", "-g", "daemon off;"), exposed_ports=("12003/tcp",)),
    ImageSpec(
        "httpd",
        "httpd: busybox httpd on :80 serving /usr/local/apache2/htdocs, started by "
        "httpd-foreground which first prints Apache's AH00094 command-line line on stderr",
        layers=(Layer(files={
            "/usr/local/apache2/bin/httpd-foreground": script(
                "#!/bin/sh\n"
                "echo \"[mpm_event:notice] [pid $$:tid $$] AH00489: Apache/2.4.39 (Unix) "
                "configured -- resuming normal operations\" >&2\n"
                "echo \"[core:notice] [pid $$:tid $$] AH00094: Command line: "
                "'httpd -D FOREGROUND'\" >&2\n"
                "exec httpd -f -p 80 -h /usr/local/apache2/htdocs\n"),
            "/usr/local/apache2/htdocs/index.html": text("<html><body><h1>It works!</h1></body></html>\n"),
        }),),
        cmd=("httpd-foreground",), workdir="/usr/local/apache2",
        env=("PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HTTPD_PREFIX=/usr/local/apache2"),
        exposed_ports=("80/tcp",)),
    ImageSpec(
        "nonewprivs",
        "nonewprivs: setuid-root static C program printing 'Effective uid: N'; user 1000",
        layers=(Layer(files={"/usr/local/bin/nnp": program("nonewprivs", mode=0o4755)}),),
        entrypoint=("/usr/local/bin/nnp",), user="1000"),
    ImageSpec("test-image-latest", "busybox + empty /test-image-latest",
              layers=(_marker("test-image-latest"),), cmd=("sh",)),
    ImageSpec("test-image-digest", "busybox + empty /test-image-digest (digest cannot match upstream)",
              layers=(_marker("test-image-digest"),), cmd=("sh",)),
    ImageSpec("test-image-tag", "busybox + empty /test-image-tag (tags test and all)",
              layers=(_marker("test-image-tag"),), cmd=("sh",)),
    ImageSpec("test-image-1", "busybox + empty /test-image-1", layers=(_marker("test-image-1"),), cmd=("sh",)),
    ImageSpec("test-image-2", "busybox + empty /test-image-2", layers=(_marker("test-image-2"),), cmd=("sh",)),
    ImageSpec("test-image-3", "busybox + empty /test-image-3", layers=(_marker("test-image-3"),), cmd=("sh",)),
    ImageSpec("test-image-tags", "busybox + empty /same-image (tags 1, 2, 3: one image)",
              layers=(_marker("same-image"),), cmd=("sh",)),
    ImageSpec("test-image-user-uid", "busybox, USER 1002", user="1002", cmd=("sh",)),
    ImageSpec("test-image-user-username", "busybox, USER www-data", user="www-data", cmd=("sh",)),
    ImageSpec("test-image-user-uid-group", "busybox, USER 1003:1004", user="1003:1004", cmd=("sh",)),
    ImageSpec("test-image-user-username-group", "busybox, USER www-data:1004",
              user="www-data:1004", cmd=("sh",)),
    ImageSpec(
        "test-image-predefined-group",
        "busybox + user default-user (1000) in group group-defined-in-image (50000); USER 1000",
        layers=(Layer(files={
            "/etc/passwd": text(PASSWD + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"),
            "/etc/group": text(GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"),
            "/home/default-user": directory(0o755, 1000, 1000),
        }),),
        user="1000", cmd=("sh",)),
]}

_E2E = "registry.k8s.io/e2e-test-images/"
_STG = "gcr.io/k8s-staging-cri-tools/"

# original reference (as critest v1.37.0 pulls it) -> (local path:tag, stand-in).
# Local path = the original with its registry host dropped. The one exception is
# the digest-pinned reference: a stand-in cannot have upstream's digest, so its
# stand-in is pushed with tag latest and that spec is an honest expected failure.
CRITEST_IMAGES: dict[str, tuple[str, str]] = {
    _E2E + "busybox:1.29-2": ("e2e-test-images/busybox:1.29-2", "critest-busybox"),
    _E2E + "nginx:1.14-2": ("e2e-test-images/nginx:1.14-2", "nginx"),
    _E2E + "httpd:2.4.39-4": ("e2e-test-images/httpd:2.4.39-4", "httpd"),
    _E2E + "nonewprivs:1.3": ("e2e-test-images/nonewprivs:1.3", "nonewprivs"),
    "registry.k8s.io/pause:3.9": ("pause:3.9", "pause"),
    "k8s.gcr.io/pause:3.9": ("pause:3.9", "pause"),
    _STG + "test-image-latest": ("k8s-staging-cri-tools/test-image-latest:latest", "test-image-latest"),
    _STG + "test-image-tag:test": ("k8s-staging-cri-tools/test-image-tag:test", "test-image-tag"),
    _STG + "test-image-tag:all": ("k8s-staging-cri-tools/test-image-tag:all", "test-image-tag"),
    _STG + "test-image-digest@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf":
        ("k8s-staging-cri-tools/test-image-digest:latest", "test-image-digest"),
    _STG + "test-image-1:latest": ("k8s-staging-cri-tools/test-image-1:latest", "test-image-1"),
    _STG + "test-image-2:latest": ("k8s-staging-cri-tools/test-image-2:latest", "test-image-2"),
    _STG + "test-image-3:latest": ("k8s-staging-cri-tools/test-image-3:latest", "test-image-3"),
    _STG + "test-image-tags:1": ("k8s-staging-cri-tools/test-image-tags:1", "test-image-tags"),
    _STG + "test-image-tags:2": ("k8s-staging-cri-tools/test-image-tags:2", "test-image-tags"),
    _STG + "test-image-tags:3": ("k8s-staging-cri-tools/test-image-tags:3", "test-image-tags"),
    _STG + "test-image-user-uid": ("k8s-staging-cri-tools/test-image-user-uid:latest", "test-image-user-uid"),
    _STG + "test-image-user-username":
        ("k8s-staging-cri-tools/test-image-user-username:latest", "test-image-user-username"),
    _STG + "test-image-user-uid-group":
        ("k8s-staging-cri-tools/test-image-user-uid-group:latest", "test-image-user-uid-group"),
    _STG + "test-image-user-username-group":
        ("k8s-staging-cri-tools/test-image-user-username-group:latest", "test-image-user-username-group"),
    _STG + "test-image-predefined-group":
        ("k8s-staging-cri-tools/test-image-predefined-group:latest", "test-image-predefined-group"),
    _STG + "hostnet-nginx-" + _goarch():
        (f"k8s-staging-cri-tools/hostnet-nginx-{_goarch()}:latest", "hostnet-nginx"),
}

# Not pulled by critest itself, but a runtime needs a pod sandbox image; the
# usual defaults are pushed too (same pause stand-in).
SANDBOX_IMAGES: dict[str, tuple[str, str]] = {
    "registry.k8s.io/pause:3.10": ("pause:3.10", "pause"),
    "registry.k8s.io/pause:3.10.1": ("pause:3.10.1", "pause"),
}


def standin_layout(name: str = "busybox", cache_dir: str = DEFAULT_CACHE) -> str:
    """The OCI layout directory of a stand-in image, as `podshimd import` takes it."""
    return build_image(STANDINS[name], cache_dir).rsplit(":", 1)[0]


def all_images() -> dict[str, tuple[str, str]]:
    return {**CRITEST_IMAGES, **SANDBOX_IMAGES}


def mirror_hosts(table: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Registry hosts whose references the table rewrites (e.g. for a runtime's
    mirror config: every one of them -> http://<local registry>)."""
    return sorted({ref.split("/", 1)[0] for ref in (table or all_images())})


def local_refs(registry_addr: str, table: dict[str, tuple[str, str]] | None = None) -> dict[str, str]:
    """original reference -> reference in the local registry."""
    return {orig: f"{registry_addr}/{path}" for orig, (path, _) in (table or all_images()).items()}


def build_all(cache_dir: str = DEFAULT_CACHE, names: Iterable[str] | None = None) -> dict[str, str]:
    """Builds (or finds cached) the stand-ins; returns name -> oci ref."""
    out = {}
    for name in names or STANDINS:
        out[name] = build_image(STANDINS[name], cache_dir)
    return out


def push_critest_images(registry_addr: str, cache_dir: str = DEFAULT_CACHE,
                        jobs: int = 4) -> dict[str, str]:
    """Builds (cached) and pushes a stand-in for every image critest v1.37.0
    references, plus the sandbox images; returns original ref -> local ref."""
    table = all_images()
    refs = build_all(cache_dir, sorted({standin for _, standin in table.values()}))
    # Tags of one repository are pushed one after the other (concurrent pushes
    # of the same manifest into one repository race in docker-registry); the
    # first repository on the busybox-static base goes alone, so that shared
    # layer is stored once.
    by_repo: dict[str, list[tuple[str, str]]] = {}
    for path, standin in sorted({(p, s) for p, s in table.values()}):
        by_repo.setdefault(path.rsplit(":", 1)[0], []).append((path, standin))

    def push_repo(items: list[tuple[str, str]]) -> None:
        for path, standin in items:
            push(refs[standin], f"{registry_addr}/{path}")

    groups = list(by_repo.values())
    first = next((i for i, g in enumerate(groups) if STANDINS[g[0][1]].base == "busybox"), 0)
    push_repo(groups.pop(first))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        for f in [ex.submit(push_repo, g) for g in groups]:
            f.result()
    return local_refs(registry_addr, table)


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build")
    p = sub.add_parser("push")
    p.add_argument("registry", help="HOST:PORT of a plain-HTTP registry, e.g. 127.0.0.1:5000")
    t = sub.add_parser("table")
    t.add_argument("registry", nargs="?", default="127.0.0.1:PORT")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        for name, ref in build_all(args.cache).items():
            print(f"{name:32} oci:{ref}")
    elif args.cmd == "push":
        for orig, local in push_critest_images(args.registry, args.cache).items():
            print(f"{orig} -> {local}")
    else:
        for orig, local in local_refs(args.registry).items():
            print(f"{orig} -> {local}  ({all_images()[orig][1]})")
        print("mirror hosts:", " ".join(mirror_hosts()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
