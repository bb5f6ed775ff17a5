"""Which of requirements.txt's pins the running Python lacks (standard library only: it runs before anything is
installed). Exit status 0 when every pin is met; otherwise 1, with one line per missing or mismatched package.

    python3 icefall_lite/shell/check_requirements.py requirements.txt REPO_ROOT
    python3 icefall_lite/shell/check_requirements.py --externally-managed   # exit 0 if pip must not touch it

"-e ." stands for this repository's library: met when `icefall_lite` imports from REPO_ROOT.
"""

import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path
from typing import List, Tuple


def pins(requirements: Path) -> List[Tuple[str, str]]:
    """(name, version) of every `name==version` line; "-e ." as ("-e", path)."""
    result = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-e "):
            result.append(("-e", line[3:].strip()))
        elif "==" in line:
            name, version = line.split("==", 1)
            result.append((name.strip(), version.strip()))
    return result


def problem(name: str, version: str, repo_root: Path) -> str:
    """'' when the pin is met, else what is wrong."""
    if name == "-e":
        spec = importlib.util.find_spec("icefall_lite")
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin is None or (repo_root.resolve() / version) not in origin.parents:
            return f"icefall_lite is not installed from {repo_root} (pip install -e {repo_root})"
        return ""
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return f"{name}=={version} is not installed"
    return "" if installed == version else f"{name}=={version} is wanted, {installed} is installed"


def externally_managed() -> bool:
    """PEP 668: the interpreter's distribution forbids pip outside a virtual environment."""
    marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
    return marker.is_file() and sys.prefix == sys.base_prefix


def main(argv: List[str]) -> int:
    if argv == ["--externally-managed"]:
        return 0 if externally_managed() else 1
    requirements, repo_root = Path(argv[0]), Path(argv[1])
    sys.path = [entry for entry in sys.path if Path(entry or os.getcwd()).resolve() != repo_root.resolve()]
    problems = [text for name, version in pins(requirements) if (text := problem(name, version, repo_root))]
    for text in problems:
        print(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
