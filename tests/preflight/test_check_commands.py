"""The preflight guard (check_commands.py) itself: it must fail, naming the
command, when nothing that the install script installs provides it, and pass
on the project as it is."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHECKER = HERE / "check_commands.py"

pytestmark = pytest.mark.skipif(shutil.which("shfmt") is None,
                                reason="shfmt missing: deploy/setup.sh installs it")


def run_checker(repo: Path, setup: Path | None = None):
    args = [sys.executable, str(CHECKER), "--repo", str(repo), "--verbose"]
    if setup is not None:
        args += ["--setup", str(setup)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def make_repo(tmp_path: Path, files: dict[str, str], packages: str = "coreutils bash") -> Path:
    """A tree that is not a git checkout: the checker then reads every file."""
    repo = tmp_path / "repo"
    for name, text in files.items():
        p = repo / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    setup = repo / "deploy" / "setup.sh"
    setup.parent.mkdir(parents=True, exist_ok=True)
    setup.write_text(f"#!/usr/bin/env bash\nTEST_PKGS=(\n  {packages}\n)\n")
    return repo


def test_the_project_passes():
    r = run_checker(REPO)
    assert r.returncode == 0, r.stderr
    assert "external commands" in r.stdout
    # The command whose absence started this guard is checked, and found.
    assert "nft " in r.stdout and "nftables" in r.stdout


def test_a_command_no_package_provides_fails_by_name(tmp_path):
    repo = make_repo(tmp_path, {"tests/t.sh": """\
        #!/usr/bin/env bash
        echo start
        podshim-no-such-tool --flag | wc -l
        """})
    r = run_checker(repo)
    assert r.returncode == 1
    assert "`podshim-no-such-tool` (tests/t.sh:3)" in r.stderr
    assert "not installed" in r.stderr
    assert "1 of " in r.stderr


def test_a_package_setup_does_not_install_fails_naming_it(tmp_path):
    # Issue 16 as it happened: a test calls nft; setup.sh does not install nftables.
    if shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin") is None:
        pytest.skip("nft missing: deploy/setup.sh installs nftables")
    repo = make_repo(tmp_path, {"tests/test_x.py": """\
        import subprocess
        subprocess.run(["nft", "list", "ruleset"], check=True)
        """})
    r = run_checker(repo)
    assert r.returncode == 1
    assert "`nft` (tests/test_x.py:2) comes from Debian package nftables" in r.stderr

    (repo / "deploy" / "setup.sh").write_text("TEST_PKGS=(coreutils nftables)\n")
    r = run_checker(repo)
    assert r.returncode == 0, r.stderr
    assert "Debian package nftables" in r.stdout


def test_commands_are_found_through_wrappers_functions_and_python_forms(tmp_path):
    repo = make_repo(tmp_path, {
        "scripts/a.sh": """\
            #!/usr/bin/env bash
            run_stage() {
              local name="$1"
              shift
              "$@"
            }
            run_stage unit podshim-missing-a --preset x
            x="$(timeout 5 podshim-missing-b)"
            bash -c "podshim-missing-c | cat"
            xargs -P 2 -n 4 podshim-missing-d <list
            command -v podshim-missing-e >/dev/null
            FOO=1 podshim-missing-f
            run_stage other echo fine
            """,
        "tests/b.py": """\
            import shutil, subprocess
            BINARY = "podshim-missing-g"
            def start(binary: str = "podshim-missing-h"):
                for tool in ("podshim-missing-i", "echo"):
                    shutil.which(tool)
            subprocess.Popen(("podshim-missing-j", "-x"))
            "a b".startswith(("podshim-not-a-command",))
            # preflight: optional (only with a flag nobody passes)
            shutil.which("podshim-optional-k")
            """,
    })
    r = run_checker(repo)
    assert r.returncode == 1
    for letter in "abcdefghij":
        assert f"`podshim-missing-{letter}`" in r.stderr, letter
    assert "podshim-not-a-command" not in r.stderr
    assert "podshim-optional-k" not in r.stderr
    assert "podshim-optional-k       optional, not checked" in r.stdout
    assert "10 of " in r.stderr


def test_project_executables_and_local_functions_are_not_external(tmp_path):
    repo = make_repo(tmp_path, {
        "CMakeLists.txt": "add_executable(podshim-built main.cc)\n",
        "tests/c.sh": """\
            #!/usr/bin/env bash
            helper() { echo hi; }
            helper
            podshim-built --version
            """,
    })
    r = run_checker(repo)
    assert r.returncode == 0, r.stderr
    assert "podshim-built" in r.stdout and "built by the project" in r.stdout
