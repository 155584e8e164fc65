#!/usr/bin/env python3
"""Preflight: every external command the project's scripts and tests run must
come from something deploy/setup.sh installs.

A green run on a machine that had a tool installed by hand hides a missing
install step (issue 16: the network tests called `nft`, which only the
machine that ran CI happened to have). This check finds the commands
statically and fails, naming each, when none of these provides it:

  * a Debian package that deploy/setup.sh installs (its *_PKGS arrays), or a
    package those depend on (Depends and Pre-Depends, recursively);
  * a package every Debian system has (Essential: yes or Priority: required);
  * the project itself: an executable its CMake files build, or a file under
    the repository (.tools/ is where setup.sh builds crictl and critest and
    keeps the Python venv);
  * the few tools the machine provides outside dpkg, each named with its
    reason in OUTSIDE_DPKG below.

Where commands are found:
  * shell scripts (*.sh, .ci/run, files with a sh/bash shebang), parsed by
    shfmt --to-json (Debian's shfmt): every simple command's first word when
    it is a literal, looking through exec/command/env/setsid/timeout/xargs/
    nohup/sudo, through `bash -c 'literal'`, and through the arguments of a
    local function that runs "$@" after N shifts;
  * Python files (ast): the first element of a literal list or tuple passed
    to a call (subprocess.run([...]), Popen, _run([...]), ...), the argument
    of shutil.which("x"), the names a `for x in ("a", "b")` loop hands to
    shutil.which(x), and string constants assigned to names like BINARY,
    binary or *_BINARY.

Usage: check_commands.py [--repo DIR] [--setup FILE] [--verbose]
Exit 0 when every command is provided, 1 (with one line per command) when
not, 2 when the check itself cannot run (no shfmt, no dpkg-query).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Tools a fresh machine of the project's kind has outside dpkg, each with why
# it may be relied on.
OUTSIDE_DPKG = {
    "go": "the machine's Go in /usr/local/go/bin; deploy/setup.sh installs golang-go when it is absent",
}

SHELL_BUILTINS = set("""
    . : [ [[ alias bg bind break builtin caller cd command compgen complete compopt continue
    declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history
    jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set
    shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait
    """.split())
# Commands that run their argument as a command: name -> options taking a value.
WRAPPERS = {
    "exec": set(), "command": set(), "builtin": set(), "nohup": set(), "setsid": set(),
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "env": {"-u", "-C", "-S"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "xargs": {"-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s", "--arg-file",
              "--delimiter", "--max-args", "--max-procs", "--max-lines", "--max-chars"},
    "nice": {"-n"}, "stdbuf": {"-i", "-o", "-e"}, "ionice": {"-c", "-n", "-p"},
    "unshare": set(), "nsenter": {"-t", "--target"}, "chroot": set(), "time": set(),
}
# Python calls that run a command line given as a list.
PY_RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "execv",
              "execvp", "execvpe", "spawnv", "spawnvp", "create_subprocess_exec"}
# A use on a line carrying this marker is optional (e.g. a flag the test
# command never passes); it is listed with --verbose, never required.
OPTIONAL_MARK = "preflight: optional"
# Python names whose string value is a command to run.
BINARY_NAME = re.compile(r"(^|_)(binary|BINARY|bin|BIN)$")
COMMAND_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass
class Use:
    command: str
    where: str  # path:line


@dataclass
class Found:
    uses: list[Use] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    optional: list[Use] = field(default_factory=list)
    _lines: dict[Path, list[str]] = field(default_factory=dict)

    def add(self, command: str, path: Path, line: int, repo: Path) -> None:
        if not COMMAND_WORD.match(command):
            return
        if path not in self._lines:
            self._lines[path] = path.read_text().splitlines()
        lines = self._lines[path]
        use = Use(command, f"{path.relative_to(repo)}:{line}")
        # The marker may stand on the line or on the comment line above it.
        near = lines[max(0, line - 2):line]
        if any(OPTIONAL_MARK in ln for ln in near):
            self.optional.append(use)
        else:
            self.uses.append(use)


# --- shell ------------------------------------------------------------------
def _lit(word: dict | None) -> str | None:
    """The text of a shell word made only of literal parts (quotes allowed)."""
    if not word:
        return None
    out = []
    for part in word.get("Parts", []):
        t = part.get("Type")
        if t == "Lit":
            out.append(part["Value"])
        elif t == "SglQuoted":
            out.append(part["Value"])
        elif t == "DblQuoted":
            for p in part.get("Parts", []):
                if p.get("Type") != "Lit":
                    return None
                out.append(p["Value"])
        else:
            return None
    return "".join(out)


def _is_dollar_at(word: dict) -> bool:
    parts = word.get("Parts", [])
    if len(parts) != 1 or parts[0].get("Type") != "DblQuoted":
        return False
    inner = parts[0].get("Parts", [])
    return (len(inner) == 1 and inner[0].get("Type") == "ParamExp"
            and inner[0].get("Param", {}).get("Value") == "@")


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _shfmt(text: str) -> dict:
    proc = subprocess.run(["shfmt", "--to-json"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ValueError(proc.stderr.strip())
    return json.loads(proc.stdout)


def _command_runners(tree: dict) -> dict[str, int]:
    """Local functions that run "$@" as a command: name -> shifts before it."""
    runners = {}
    for node in _walk(tree):
        if node.get("Type") != "FuncDecl":
            continue
        shifts = 0
        for inner in _walk(node.get("Body", {})):
            if inner.get("Type") != "CallExpr" or not inner.get("Args"):
                continue
            first = inner["Args"][0]
            if _lit(first) == "shift":
                arg = _lit(inner["Args"][1]) if len(inner["Args"]) > 1 else "1"
                shifts += int(arg) if arg and arg.isdigit() else 1
            elif _is_dollar_at(first):
                runners[node["Name"]["Value"]] = shifts
                break
    return runners


def _function_names(tree: dict) -> set[str]:
    return {n["Name"]["Value"] for n in _walk(tree) if n.get("Type") == "FuncDecl"}


def scan_shell(path: Path, repo: Path, found: Found, functions: set[str],
               runners: dict[str, int], text: str | None = None, line0: int = 0) -> None:
    text = path.read_text() if text is None else text
    try:
        tree = _shfmt(text)
    except ValueError as e:
        found.problems.append(f"{path.relative_to(repo)}: shfmt cannot parse it: {e}")
        return
    for node in _walk(tree):
        if node.get("Type") != "CallExpr" or not node.get("Args"):
            continue
        words = node["Args"]
        line = line0 + node["Pos"]["Line"]
        _shell_command(words, path, line, repo, found, functions, runners)


def _shell_command(words: list[dict], path: Path, line: int, repo: Path, found: Found,
                   functions: set[str], runners: dict[str, int]) -> None:
    i = 0
    while i < len(words):
        name = _lit(words[i])
        if name is None:
            return
        if name in runners:  # run_stage NAME CMD...: CMD starts after the shifts
            i += 1 + runners[name]
            continue
        if name in functions:
            return
        if name in WRAPPERS and name not in ("command",):
            opts = WRAPPERS[name]
            i += 1
            while i < len(words):
                w = _lit(words[i])
                if w is None:
                    return
                if name == "env" and "=" in w and not w.startswith("-"):
                    i += 1
                elif name == "timeout" and re.match(r"^[0-9.]+[smhd]?$", w):
                    i += 1
                    break
                elif w in opts:
                    i += 2
                elif w.startswith("-"):
                    i += 1
                else:
                    break
            if name == "timeout" and i < len(words) and _lit(words[i]) and \
                    re.match(r"^[0-9.]+[smhd]?$", _lit(words[i]) or ""):
                i += 1
            continue
        if name == "command":
            rest = [_lit(w) for w in words[i + 1:]]
            if rest and rest[0] in ("-v", "-V") and len(rest) > 1 and rest[1]:
                found.add(rest[1], path, line, repo)
                return
            i += 1
            continue
        if name in SHELL_BUILTINS or "/" in name or "=" in name:
            return
        found.add(name, path, line, repo)
        if name in ("bash", "sh") and len(words) > i + 2 and _lit(words[i + 1]) == "-c":
            script = _lit(words[i + 2])
            if script:
                scan_shell(path, repo, found, functions, runners, text=script, line0=line - 1)
        return


# --- Python -----------------------------------------------------------------
def _const_str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _is_runner(name: str) -> bool:
    """A call that runs its first argument as a command line."""
    return name in PY_RUNNERS or name.startswith("run") or name.endswith("_run") or \
        name.startswith("_run")


def scan_python(path: Path, repo: Path, found: Found) -> None:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as e:
        found.problems.append(f"{path.relative_to(repo)}: not Python: {e}")
        return
    loop_values: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and \
                isinstance(node.iter, (ast.Tuple, ast.List)):
            loop_values[node.target.id] = [s for s in map(_const_str, node.iter.elts) if s]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "which" and node.args:
                arg = node.args[0]
                if _const_str(arg):
                    found.add(_const_str(arg), path, node.lineno, repo)
                elif isinstance(arg, ast.Name):
                    for v in loop_values.get(arg.id, []):
                        found.add(v, path, node.lineno, repo)
                continue
            if node.args and isinstance(node.args[0], (ast.List, ast.Tuple)) and \
                    node.args[0].elts and _is_runner(name):
                first = _const_str(node.args[0].elts[0])
                if first and "/" not in first:
                    found.add(first, path, node.lineno, repo)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = _const_str(node.value) if node.value is not None else None
            for t in targets:
                tname = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
                if value and BINARY_NAME.search(tname) and "/" not in value:
                    found.add(value, path, node.lineno, repo)
        elif isinstance(node, ast.arguments):
            params = node.posonlyargs + node.args
            defaults = [None] * (len(params) - len(node.defaults)) + list(node.defaults)
            pairs = list(zip(params, defaults)) + list(zip(node.kwonlyargs, node.kw_defaults))
            for param, default in pairs:
                value = _const_str(default) if default is not None else None
                if value and BINARY_NAME.search(param.arg) and "/" not in value:
                    found.add(value, path, getattr(default, "lineno", 0), repo)


# --- what provides a command --------------------------------------------------
def setup_packages(setup: Path) -> set[str]:
    """The Debian packages named in setup.sh's *_PKGS=( ... ) arrays."""
    text = setup.read_text()
    pkgs: set[str] = set()
    for m in re.finditer(r"^\s*[A-Z_]*PKGS=\((.*?)\)", text, re.S | re.M):
        body = re.sub(r"#[^\n]*", "", m.group(1))
        pkgs.update(w for w in body.split() if re.match(r"^[a-z0-9][a-z0-9+.-]+$", w))
    for m in re.finditer(r"apt-get install[^\n]*", text):
        pkgs.update(w for w in m.group(0).split()[2:] if re.match(r"^[a-z0-9][a-z0-9+.-]+$", w))
    return pkgs


def _installed() -> dict[str, dict]:
    fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n"
    proc = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True,
                          check=True)
    out = {}
    for line in proc.stdout.splitlines():
        pkg, status, essential, prio, deps, provides = (line.split("\t") + [""] * 6)[:6]
        if "install ok installed" not in status:
            continue
        out[pkg] = {"essential": essential == "yes", "priority": prio, "deps": deps,
                    "provides": [p.split()[0] for p in provides.split(",") if p.strip()]}
    return out


def allowed_packages(listed: set[str], installed: dict[str, dict]) -> set[str]:
    providers: dict[str, list[str]] = {}
    for pkg, info in installed.items():
        for v in info["provides"]:
            providers.setdefault(v, []).append(pkg)
    allowed = {p for p, i in installed.items() if i["essential"] or i["priority"] == "required"}
    todo = [p for p in listed]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        real = ([name] if name in installed else []) + providers.get(name, [])
        for pkg in real:
            allowed.add(pkg)
            for alt_group in installed[pkg]["deps"].split(","):
                for alt in alt_group.split("|"):
                    dep = alt.strip().split(" ")[0].split(":")[0]
                    if dep:
                        todo.append(dep)
    return allowed


def _owner(path: str) -> str | None:
    """The installed package that owns path (trying the /usr-merged twins)."""
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
            if c.startswith(a):
                candidates.append(b + c[len(a):])
            elif c.startswith(b):
                candidates.append(a + c[len(b):])
    for c in candidates:
        proc = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if proc.returncode == 0:
            for line in proc.stdout.splitlines():
                pkgs, _, owned = line.partition(": ")
                if owned.strip() == c and "diversion" not in pkgs:
                    return pkgs.split(",")[0].split(":")[0].strip()
    return None


def _provided(cmd: str, search: str, repo: Path, allowed: set[str],
              setup_name: str) -> tuple[str, str]:
    """(verdict, "") when something allowed provides cmd on the search path,
    else ("", problem). Every match on the path counts: python3 may be found
    first in a hand-made pyenv while Debian's python3 package is installed too."""
    matches = []
    for d in search.split(os.pathsep):
        p = os.path.join(d, cmd) if d else ""
        if p and os.path.isfile(p) and os.access(p, os.X_OK) and p not in matches:
            matches.append(p)
    if not matches:
        return "", f"is not installed, and no package that {setup_name} installs provides it"
    problems = []
    for path in matches:
        if Path(path).resolve().is_relative_to(repo.resolve()):
            return f"project-local {Path(path).relative_to(repo)}", ""
        owner = _owner(path)
        if owner is None:
            problems.append(f"is {path}, which no Debian package owns: installed by hand, "
                            f"not by {setup_name}")
        elif owner not in allowed:
            problems.append(f"comes from Debian package {owner}, which {setup_name} does not "
                            "install")
        else:
            return f"Debian package {owner}", ""
    return "", "; ".join(problems)


def project_executables(repo: Path) -> set[str]:
    names = set()
    for f in list(repo.rglob("CMakeLists.txt")) + list(repo.rglob("*.cmake")):
        if "/build/" in str(f) or "/.tools/" in str(f):
            continue
        names.update(re.findall(r"add_(?:executable|podshim_\w+|static_\w+)\(\s*([A-Za-z0-9_-]+)",
                                f.read_text()))
    return names


def files_to_scan(repo: Path) -> tuple[list[Path], list[Path]]:
    proc = subprocess.run(["git", "-C", str(repo), "ls-files", "--cached", "--others",
                           "--exclude-standard"], capture_output=True, text=True)
    if proc.returncode == 0:
        rel = [Path(p) for p in proc.stdout.splitlines()]
    else:
        rel = [p.relative_to(repo) for p in repo.rglob("*") if p.is_file()]
    shell, python = [], []
    for r in sorted(set(rel)):
        p = repo / r
        if not p.is_file() or r.parts[0] in ("build", ".tools", ".git"):
            continue
        if r.suffix == ".py":
            python.append(p)
        elif r.suffix == ".sh" or str(r) == ".ci/run":
            shell.append(p)
        elif not r.suffix:
            try:
                head = p.open("rb").readline(200)
            except OSError:
                continue
            if re.match(rb"#!.*\b(ba)?sh\b", head):
                shell.append(p)
            elif re.match(rb"#!.*python", head):
                python.append(p)
    return shell, python


def check(repo: Path, setup: Path, verbose: bool = False) -> int:
    for tool in ("shfmt", "dpkg-query"):
        if shutil.which(tool) is None:
            print(f"preflight: {tool} is missing (deploy/setup.sh installs it)", file=sys.stderr)
            return 2
    shell, python = files_to_scan(repo)
    found = Found()
    trees = {}
    functions: set[str] = set()
    runners: dict[str, int] = {}
    for p in shell:  # sourced helper files define functions others call
        try:
            trees[p] = _shfmt(p.read_text())
        except ValueError:
            continue
        functions |= _function_names(trees[p])
        runners.update(_command_runners(trees[p]))
    for p in shell:
        scan_shell(p, repo, found, functions, runners)
    for p in python:
        scan_python(p, repo, found)

    installed = _installed()
    listed = setup_packages(setup)
    allowed = allowed_packages(listed, installed)
    ours = project_executables(repo)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin",
                              "/usr/local/go/bin", str(repo / ".tools/bin"),
                              str(repo / ".tools/venv/bin")])
    by_command: dict[str, list[str]] = {}
    for u in found.uses:
        by_command.setdefault(u.command, []).append(u.where)

    bad = list(found.problems)
    for cmd in sorted(by_command):
        where = by_command[cmd][0] + (f" and {len(by_command[cmd]) - 1} more"
                                      if len(by_command[cmd]) > 1 else "")
        if cmd in ours:
            verdict = "built by the project"
        elif cmd in OUTSIDE_DPKG:
            verdict = OUTSIDE_DPKG[cmd]
        else:
            verdict, problem = _provided(cmd, search, repo, allowed, setup.name)
            if problem:
                bad.append(f"`{cmd}` ({where}) {problem}")
                continue
        if verbose:
            print(f"  {cmd:<24} {verdict}  ({where})")
    if verbose:
        for u in found.optional:
            print(f"  {u.command:<24} optional, not checked  ({u.where})")
    n = len(by_command)
    if bad:
        for b in bad:
            print(f"preflight: {b}", file=sys.stderr)
        print(f"preflight: {len(bad)} of {n} commands are not provided by {setup.name}",
              file=sys.stderr)
        return 1
    print(f"preflight: all {n} external commands that {len(shell)} shell and {len(python)} "
          f"Python files run are provided by {setup.name}, the base system or the project")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    repo_default = Path(__file__).resolve().parents[2]
    ap.add_argument("--repo", type=Path, default=repo_default)
    ap.add_argument("--setup", type=Path, default=None,
                    help="the install script whose packages count (default REPO/deploy/setup.sh)")
    ap.add_argument("--verbose", "-v", action="store_true")
    a = ap.parse_args(argv)
    repo = a.repo.resolve()
    return check(repo, a.setup or repo / "deploy/setup.sh", a.verbose)


if __name__ == "__main__":
    sys.exit(main())
