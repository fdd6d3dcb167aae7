#!/usr/bin/env python3
"""Bootstrap and run: the two Quickstart commands.

    python3 dev.py up      # create .venv, install, run the stack on embedded defaults
    python3 dev.py test    # create .venv, install, run the whole test suite

Needs only Python >= 3.11 with pip and venv. Extra arguments are passed through
(`python3 dev.py test -k proxy`, `python3 dev.py up --no-traffic`). Other verbs run
the installed `strangle` command (`python3 dev.py status`) or `lint` / `bench`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("STRANGLER_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _stamp() -> Path:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"strangler needs Python >= 3.11 (this is {sys.version.split()[0]})")
    if _stamp().exists():
        return
    if not (BIN / "python").exists():
        print(f"dev.py: creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing strangler and its test dependencies (first run only)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    _stamp().touch()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    verb, rest = argv[0], argv[1:]
    ensure_venv()
    os.chdir(ROOT)
    if verb == "test":
        cmd = [str(BIN / "python"), "-m", "pytest", *rest]
    elif verb == "lint":
        ruff = subprocess.run([str(BIN / "ruff"), "check", "strangler_proxy", "cdc", *rest])
        mypy = subprocess.run([str(BIN / "mypy")])
        return ruff.returncode or mypy.returncode
    elif verb == "bench":
        cmd = [str(BIN / "python"), "-m", "bench", *rest]
    else:
        cmd = [str(BIN / "strangle"), verb, *rest]
    if os.name == "posix":
        # Become the command, so signals (Ctrl-C, SIGTERM from a supervisor) reach it directly.
        os.execv(cmd[0], cmd)
    try:
        return subprocess.run(cmd).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
