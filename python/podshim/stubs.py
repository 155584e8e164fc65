"""Generates the CRI v1 Python stubs from proto/runtime/v1/api.proto on first use.

The stubs are never committed: they are built with grpc_tools.protoc into a
cache folder named after the proto's hash (default <repo>/build/python, or
$PODSHIM_PYGEN_DIR), so an edited proto gives fresh stubs.
"""

import hashlib
import importlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PROTO_FILE = PROTO_ROOT / "runtime" / "v1" / "api.proto"

_modules = None


def _generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # imported late: only needed on a cache miss

    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Generate into a temp folder and rename, so concurrent test processes
    # never import a half-written module.
    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=out_dir.parent))
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={tmp}",
        f"--grpc_python_out={tmp}",
        str(PROTO_FILE.relative_to(PROTO_ROOT)),
    ])
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on {PROTO_FILE} (exit {rc})")
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if not (out_dir / "runtime" / "v1" / "api_pb2.py").exists():
            raise


def _load():
    global _modules
    if _modules is None:
        digest = hashlib.sha256(PROTO_FILE.read_bytes()).hexdigest()[:16]
        base = Path(os.environ.get("PODSHIM_PYGEN_DIR", REPO / "build" / "python"))
        out_dir = base / f"cri-{digest}"
        if not (out_dir / "runtime" / "v1" / "api_pb2_grpc.py").exists():
            _generate(out_dir)
        sys.path.insert(0, str(out_dir))
        pb2 = importlib.import_module("runtime.v1.api_pb2")
        pb2_grpc = importlib.import_module("runtime.v1.api_pb2_grpc")
        _modules = (pb2, pb2_grpc)
    return _modules


def cri():
    """The generated message module (runtime.v1.api_pb2)."""
    return _load()[0]


def cri_grpc():
    """The generated service module (runtime.v1.api_pb2_grpc)."""
    return _load()[1]
