#!/usr/bin/env python3
"""Clang's thread-safety analysis (-Wthread-safety) over podshim's own C++.

gcc, which builds podshim, does not check Abseil's ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED
annotations; clang does. This runs clang++ -fsyntax-only with every other warning off and the
thread-safety ones as errors, on each of podshim's sources, with the include paths and defines of
a configured build's compile_commands.json (default build/release; BUILD_DIR overrides). It
compiles nothing, so it takes a fraction of a clang build. Exits non-zero on any finding.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = ("agent/", "runtime/", "image/", "cni/", "kubelet/", "streaming/")
FLAGS = ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Werror=thread-safety"]


def clang_command(entry, clang):
    """The entry's compiler call, made a clang syntax check."""
    args = entry.get("arguments") or shlex.split(entry["command"])
    out = [clang]
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a == "-c" or a.startswith("-W") or a.startswith("-O") or a.startswith("-f"):
            continue
        out.append(a)
    return out + FLAGS


def check(entry, clang):
    proc = subprocess.run(clang_command(entry, clang), cwd=entry["directory"],
                          capture_output=True, text=True)
    return entry["file"], proc.returncode, proc.stderr


def main():
    build = Path(os.environ.get("BUILD_DIR", REPO / "build" / "release"))
    db = build / "compile_commands.json"
    if not db.exists():
        sys.exit(f"thread-safety: {db} missing; configure the build first")
    clang = shutil.which("clang++")
    if clang is None:
        sys.exit("thread-safety: clang++ not found (deploy/setup.sh installs Debian's clang)")
    entries = [e for e in json.loads(db.read_text())
               if Path(e["file"]).resolve().is_relative_to(REPO)
               and str(Path(e["file"]).resolve().relative_to(REPO)).startswith(MODULES)]
    failed = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for name, rc, err in pool.map(lambda e: check(e, clang), entries):
            if rc != 0:
                failed += 1
                sys.stderr.write(err)
    if failed:
        sys.exit(f"thread-safety: {failed} of {len(entries)} files have findings")
    print(f"thread-safety: clang -Wthread-safety clean ({len(entries)} files)")


if __name__ == "__main__":
    main()
