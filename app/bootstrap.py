"""Set up the project's virtual environment and run the chatbot or the tests.

Standard library only, so it runs on a machine that has nothing but Python:
    python3 -m app.bootstrap serve   # install, prepare model and index, serve on 127.0.0.1:7860
    python3 -m app.bootstrap test    # install (with browser for UI tests), run the whole suite
Each step is skipped when already done, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TORCH = "torch==2.13.0"  # the CPU build; any other torch request pulls a multi-GB CUDA build


def run(*cmd: str, **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_venv(extras: str) -> None:
    stamp = VENV / f".reportqa-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        run(sys.executable, "-m", "venv", str(VENV))
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(*pip, TORCH)  # first, so nothing below can pull another torch
    run(*pip, "-e", f"{ROOT}[{extras}]" if extras else str(ROOT))
    stamp.write_text(want)


def ensure_browser() -> None:
    """Debian's chromium and a CJK font for the browser tests (needs root and apt-get)."""
    have_font = any(Path(p).exists() for p in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",))
    if shutil.which("chromium") and have_font:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("note: browser tests need `apt-get install chromium fonts-noto-cjk` (as root); they will be skipped", flush=True)
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "chromium", "fonts-noto-cjk", env=env)


AXE = "axe-core@4.14.1"  # tests/test_browser.py reads it from $REPORTQA_CACHE/node


def ensure_axe() -> None:
    """axe-core from npm for the accessibility check of the browser test."""
    folder = Path(os.environ.get("REPORTQA_CACHE") or Path.home() / ".cache" / "reportqa") / "node"
    if (folder / "node_modules" / "axe-core" / "axe.min.js").exists():
        return
    if not shutil.which("npm"):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            print("note: the accessibility test needs npm (`apt-get install npm`)", flush=True)
            return
        run("apt-get", "install", "-y", "-qq", "npm", env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    folder.mkdir(parents=True, exist_ok=True)
    run("npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error", AXE)


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "serve"
    rest = argv[1:]
    if what == "serve":
        ensure_venv("")
        reportqa = str(VENV / "bin" / "reportqa")
        run(reportqa, "index", "--if-stale")
        os.execv(reportqa, [reportqa, "serve", *rest])
    if what == "test":
        ensure_venv("test,milvus,ray")  # the extras' tests run in CI too
        ensure_browser()
        ensure_axe()
        return subprocess.run([str(PY), "-m", "pytest", *rest], cwd=ROOT).returncode
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
