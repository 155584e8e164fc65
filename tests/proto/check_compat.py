#!/usr/bin/env python3
"""Check that podshim's proto/runtime/v1/api.proto is wire-identical to the upstream CRI.

The upstream file comes from the Go module k8s.io/cri-api (located with
`go mod download -json`). Both files are compiled to descriptor sets with protoc
(the system `protoc` if there is one, else `python -m grpc_tools.protoc`), and the
descriptors are compared: package, services, methods, messages (recursively,
including nested and map-entry types), fields and enums. Comments, options and
declaration order are ignored.

Exit status: 0 identical, 1 differences found, 2 could not run the comparison.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

MODULE = "k8s.io/cri-api"
UPSTREAM_REL = Path("pkg/apis/runtime/v1/api.proto")
DEFAULT_VERSION = "v0.37.2"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OURS = REPO_ROOT / "proto" / "runtime" / "v1" / "api.proto"

FDP = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {v: k[len("TYPE_"):].lower() for k, v in FDP.Type.items()}
LABEL_NAMES = {v: k[len("LABEL_"):].lower() for k, v in FDP.Label.items()}


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------
# Locating and compiling the inputs
# ---------------------------------------------------------------------------

def find_go():
    go = shutil.which("go")
    if go:
        return go
    fallback = Path("/usr/local/go/bin/go")
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return str(fallback)
    raise SetupError("`go` not found on PATH nor at /usr/local/go/bin/go")


def upstream_proto(version):
    """Return the path of api.proto inside the downloaded k8s.io/cri-api module."""
    go = find_go()
    with tempfile.TemporaryDirectory(prefix="cri-go-") as cwd:
        # Run outside any module so a go.mod nearby cannot interfere.
        proc = subprocess.run([go, "mod", "download", "-json", f"{MODULE}@{version}"],
                              cwd=cwd, capture_output=True, text=True)
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise SetupError(f"go mod download {MODULE}@{version} failed: {detail}")
    path = Path(info["Dir"]) / UPSTREAM_REL
    if not path.is_file():
        raise SetupError(f"{path} does not exist in {MODULE}@{version}")
    return path


def protoc_command():
    protoc = shutil.which("protoc")
    if protoc:
        return [protoc]
    return [sys.executable, "-m", "grpc_tools.protoc"]


# Field options that an older protoc may not know (e.g. debug_redact, added in
# protobuf 22). Options never affect the wire, so they are dropped before compiling.
_DROP_OPTIONS = ("debug_redact",)


def sanitize(text):
    for name in _DROP_OPTIONS:
        opt = rf"{name}\s*=\s*(?:true|false)"
        text = re.sub(rf"\s*\[\s*{opt}\s*\]", "", text)       # the only option
        text = re.sub(rf"{opt}\s*,\s*", "", text)              # first of several
        text = re.sub(rf"\s*,\s*{opt}", "", text)              # later of several
    return text


def descriptor_set(proto_path, workdir, tag):
    """Compile one .proto file and return its FileDescriptorProto."""
    src = Path(proto_path)
    if not src.is_file():
        raise SetupError(f"{src} does not exist")
    incdir = Path(workdir) / tag
    incdir.mkdir()
    (incdir / src.name).write_text(sanitize(src.read_text()))
    out = Path(workdir) / f"{tag}.pb"
    cmd = protoc_command() + [f"-I{incdir}", f"--descriptor_set_out={out}", src.name]
    proc = subprocess.run(cmd, cwd=incdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(f"protoc failed on {src}:\n{proc.stderr.strip()}")
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    if len(fds.file) != 1:
        raise SetupError(f"expected one file in the descriptor set of {src}")
    return fds.file[0]


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------

class Comparison:
    def __init__(self):
        self.diffs = []
        self.counts = dict(messages=0, map_entries=0, fields=0, services=0,
                           methods=0, enums=0, values=0)

    def diff(self, path, what):
        self.diffs.append(f"{path}: {what}")

    def _names(self, path, kind, ours, theirs):
        """Report names present on one side only; return the common names."""
        for name in sorted(set(theirs) - set(ours)):
            self.diff(path, f"{kind} {name} missing in ours")
        for name in sorted(set(ours) - set(theirs)):
            self.diff(path, f"{kind} {name} only in ours")
        return [n for n in theirs if n in ours]

    def _attr(self, path, attr, ours, theirs):
        if ours != theirs:
            self.diff(path, f"{attr} {ours} != {theirs}")

    def files(self, ours, theirs):
        self._attr("file", "package", ours.package, theirs.package)
        scope = "." + theirs.package if theirs.package else ""
        svc_o = {s.name: s for s in ours.service}
        svc_t = {s.name: s for s in theirs.service}
        for name in self._names(f"package {theirs.package}", "service", svc_o, svc_t):
            self.service(f"{scope[1:]}.{name}".lstrip("."), svc_o[name], svc_t[name])
        self.message_list(f"package {theirs.package}", scope,
                          ours.message_type, theirs.message_type)
        self.enum_list(f"package {theirs.package}", scope, ours.enum_type, theirs.enum_type)

    def service(self, full, ours, theirs):
        self.counts["services"] += 1
        path = f"service {full}"
        m_o = {m.name: m for m in ours.method}
        m_t = {m.name: m for m in theirs.method}
        for name in self._names(path, "method", m_o, m_t):
            self.counts["methods"] += 1
            o, t = m_o[name], m_t[name]
            mpath = f"{path} method {name}"
            self._attr(mpath, "input", o.input_type, t.input_type)
            self._attr(mpath, "output", o.output_type, t.output_type)
            self._attr(mpath, "client_streaming", o.client_streaming, t.client_streaming)
            self._attr(mpath, "server_streaming", o.server_streaming, t.server_streaming)

    def message_list(self, path, scope, ours, theirs):
        by_o = {m.name: m for m in ours}
        by_t = {m.name: m for m in theirs}
        for name in self._names(path, "message", by_o, by_t):
            self.message(f"{scope}.{name}", by_o[name], by_t[name])

    def enum_list(self, path, scope, ours, theirs):
        by_o = {e.name: e for e in ours}
        by_t = {e.name: e for e in theirs}
        for name in self._names(path, "enum", by_o, by_t):
            self.enum(f"{scope}.{name}", by_o[name], by_t[name])

    def message(self, full, ours, theirs):
        is_map = theirs.options.map_entry
        self.counts["map_entries" if is_map else "messages"] += 1
        path = f"message {full[1:]}"
        self._attr(path, "map_entry", ours.options.map_entry, theirs.options.map_entry)
        self._names(path, "oneof", [o.name for o in ours.oneof_decl],
                    [o.name for o in theirs.oneof_decl])
        f_o = {f.name: f for f in ours.field}
        f_t = {f.name: f for f in theirs.field}
        for name in self._names(path, "field", f_o, f_t):
            if not is_map:
                self.counts["fields"] += 1
            self.field(f"{path} field {name}", ours, f_o[name], theirs, f_t[name])
        self.message_list(path, full, ours.nested_type, theirs.nested_type)
        self.enum_list(path, full, ours.enum_type, theirs.enum_type)

    @staticmethod
    def _oneof(msg, fld):
        return msg.oneof_decl[fld.oneof_index].name if fld.HasField("oneof_index") else None

    def field(self, path, msg_o, o, msg_t, t):
        self._attr(path, "number", o.number, t.number)
        self._attr(path, "type", TYPE_NAMES[o.type], TYPE_NAMES[t.type])
        self._attr(path, "type_name", o.type_name or "-", t.type_name or "-")
        self._attr(path, "label", LABEL_NAMES[o.label], LABEL_NAMES[t.label])
        self._attr(path, "oneof_index",
                   o.oneof_index if o.HasField("oneof_index") else None,
                   t.oneof_index if t.HasField("oneof_index") else None)
        self._attr(path, "oneof", self._oneof(msg_o, o), self._oneof(msg_t, t))
        self._attr(path, "proto3_optional", o.proto3_optional, t.proto3_optional)
        self._attr(path, "json_name", o.json_name, t.json_name)

    def enum(self, full, ours, theirs):
        self.counts["enums"] += 1
        path = f"enum {full[1:]}"
        v_o = {v.name: v for v in ours.value}
        v_t = {v.name: v for v in theirs.value}
        for name in self._names(path, "value", v_o, v_t):
            self.counts["values"] += 1
            self._attr(f"{path} value {name}", "number", v_o[name].number, v_t[name].number)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cri-api-version", default=DEFAULT_VERSION,
                    help=f"k8s.io/cri-api module version (default {DEFAULT_VERSION})")
    ap.add_argument("--ours", default=str(DEFAULT_OURS),
                    help="our api.proto (default: the repository's proto/runtime/v1/api.proto)")
    ap.add_argument("--upstream", default=None,
                    help="use this upstream api.proto instead of asking `go mod download`")
    args = ap.parse_args(argv)
    label = f"{MODULE} {args.cri_api_version}"

    try:
        upstream = Path(args.upstream) if args.upstream else upstream_proto(args.cri_api_version)
        if args.upstream:
            label = str(upstream)
        with tempfile.TemporaryDirectory(prefix="cri-compat-") as work:
            theirs = descriptor_set(upstream, work, "upstream")
            ours = descriptor_set(args.ours, work, "ours")
    except SetupError as exc:
        print(f"check_compat: error: {exc}", file=sys.stderr)
        return 2

    cmp = Comparison()
    cmp.files(ours, theirs)
    if cmp.diffs:
        print(f"{len(cmp.diffs)} difference(s) between ours (left) and {label} (right):")
        for line in cmp.diffs:
            print(f"  {line}")
    c = cmp.counts
    verdict = "OK" if not cmp.diffs else f"{len(cmp.diffs)} difference(s)"
    print(f"compared {c['messages']} messages (+{c['map_entries']} map entries), "
          f"{c['fields']} fields, {c['services']} services with {c['methods']} methods, "
          f"{c['enums']} enums ({c['values']} values) against {label}: {verdict}")
    return 0 if not cmp.diffs else 1


if __name__ == "__main__":
    sys.exit(main())
