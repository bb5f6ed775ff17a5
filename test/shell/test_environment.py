"""icefall_lite/shell/environment.sh (what run.sh, test.sh and install.sh do first) with stand-in commands: which
system packages it installs, the message without root, the virtual environment where the system Python is
externally managed, and nothing done when everything is present; and check_requirements.py's verdicts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "icefall_lite" / "shell"))
import check_requirements  # noqa: E402  (a standalone script: the shell helpers run it before anything is installed)

REAL_TOOLS = ["bash", "env", "date", "rm", "mkdir", "cat", "chmod", "basename"]
LOGGER = '#!/bin/bash\necho "$(basename "$0") $*" >> "$CALLS"\n'
FAKE_ID = '#!/bin/bash\necho "$FAKE_UID"\n'


def make_repo(tmp_path: Path) -> Path:
    """A repository with environment.sh, check_requirements.py and requirements.txt (nothing else)."""
    repo = tmp_path / "repo"
    (repo / "icefall_lite" / "shell").mkdir(parents=True)
    for name in ("environment.sh", "check_requirements.py"):
        shutil.copy(REPO / "icefall_lite" / "shell" / name, repo / "icefall_lite" / "shell" / name)
    shutil.copy(REPO / "requirements.txt", repo / "requirements.txt")
    return repo


def make_bin(tmp_path: Path, commands: Dict[str, str]) -> Path:
    """A PATH directory with the basic tools and the given stand-in scripts (name -> text)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in REAL_TOOLS:
        (directory / tool).symlink_to(shutil.which(tool))
    for name, text in {"id": FAKE_ID, "apt-get": LOGGER, **commands}.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    return directory


def ensure(repo: Path, bin_dir: Path, tmp_path: Path, uid: int = 0) -> subprocess.CompletedProcess:
    script = f'set -euo pipefail; log() {{ echo "LOG $*"; }}; source {repo}/icefall_lite/shell/environment.sh; ' \
             f'ensure_environment {repo}; echo "PYTHON=$python"; echo "FOUND=$(command -v python3)"'
    env = {"PATH": str(bin_dir), "CALLS": str(tmp_path / "calls.txt"), "FAKE_UID": str(uid), "HOME": str(tmp_path)}
    return subprocess.run([str(bin_dir / "bash"), "-c", script], capture_output=True, text=True, env=env)


def calls(tmp_path: Path) -> str:
    path = tmp_path / "calls.txt"
    return path.read_text() if path.exists() else ""


def real_python(repo: Path) -> str:
    """python3 as this interpreter, with the real repository's library on its path (its pins are met)."""
    return f'#!/bin/bash\nexport PYTHONPATH=\nif [[ $1 == */check_requirements.py && $2 != --externally-managed ]]; ' \
           f'then exec {sys.executable} "$1" "$2" {REPO}; fi\nexec {sys.executable} "$@"\n'


def test_installs_only_the_missing_system_package(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    bin_dir = make_bin(tmp_path, {"espeak-ng": LOGGER, "python3": real_python(repo)})
    result = ensure(repo, bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y -qq --no-install-recommends sox\n" in calls(tmp_path)
    assert "espeak-ng" not in calls(tmp_path)


def test_without_root_names_the_packages_to_install(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = ensure(repo, make_bin(tmp_path, {"python3": real_python(repo)}), tmp_path, uid=1000)
    assert result.returncode != 0
    assert "missing system packages: espeak-ng sox" in result.stderr
    assert "apt-get install -y --no-install-recommends espeak-ng sox" in result.stderr
    assert "apt-get" not in calls(tmp_path)


def test_nothing_is_done_when_everything_is_present(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    bin_dir = make_bin(tmp_path, {"espeak-ng": LOGGER, "sox": LOGGER, "python3": real_python(repo)})
    result = ensure(repo, bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == "" and "LOG" not in result.stdout
    assert not (repo / ".venv").exists()


VENV_PYTHON = '#!/bin/bash\necho "$0 $*" >> "$CALLS"\n' \
              'if [[ $1 == */check_requirements.py ]]; then echo "torch==2.14.1 is not installed"; exit 1; fi\n'
EXTERNALLY_MANAGED_PYTHON = f'''#!/bin/bash
if [[ $1 == */check_requirements.py && $2 == --externally-managed ]]; then exit 0; fi
if [[ $1 == -m && $2 == venv ]]; then mkdir -p "$3/bin"; cat > "$3/bin/python3" <<'STUB'
{VENV_PYTHON}STUB
chmod +x "$3/bin/python3"; exit 0; fi
echo "system python3 $*" >> "$CALLS"; exit 1
'''


def test_an_externally_managed_python_gets_a_virtual_environment_in_the_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    bin_dir = make_bin(tmp_path, {"espeak-ng": LOGGER, "sox": LOGGER, "python3": EXTERNALLY_MANAGED_PYTHON})
    result = ensure(repo, bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    venv_python = repo / ".venv" / "bin" / "python3"
    assert f"{venv_python} -m pip install -q -r requirements.txt" in calls(tmp_path)
    assert "system python3" not in calls(tmp_path)
    assert f"PYTHON={venv_python}" in result.stdout and f"FOUND={venv_python}" in result.stdout
    assert "externally managed (PEP 668)" in result.stdout


def test_check_requirements_names_what_is_missing_or_mismatched(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    installed = check_requirements.importlib.metadata.version("pytest")
    requirements.write_text(f"# comment\npytest=={installed}  # tests\nno-such-package==1.0\nsentencepiece==0.0.1\n")
    problems = [check_requirements.problem(n, v, REPO) for n, v in check_requirements.pins(requirements)]
    assert problems[0] == ""
    assert problems[1] == "no-such-package==1.0 is not installed"
    assert problems[2].startswith("sentencepiece==0.0.1 is wanted, ")


def test_check_requirements_knows_where_the_library_is_installed_from(tmp_path: Path) -> None:
    assert check_requirements.problem("-e", ".", REPO) == ""
    assert "is not installed from" in check_requirements.problem("-e", ".", tmp_path)


@pytest.mark.skipif(not Path("/usr/lib/python3/dist-packages").is_dir(), reason="needs a Debian system Python")
def test_debian_system_python_counts_as_externally_managed() -> None:
    system = subprocess.run(["/usr/bin/python3", str(REPO / "icefall_lite/shell/check_requirements.py"), "--externally-managed"])
    ours = subprocess.run([sys.executable, str(REPO / "icefall_lite/shell/check_requirements.py"), "--externally-managed"])
    assert system.returncode == 0
    assert ours.returncode == (0 if check_requirements.externally_managed() else 1)
