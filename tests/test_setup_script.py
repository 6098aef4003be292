"""scripts/setup.sh: the system packages (Qt's libraries and Debian's ``relion``) installed with apt where
apt is permitted (root or passwordless sudo), said when not, and left alone when ``dpkg -s`` finds them.

The script runs on a copy of the project's ``scripts/`` with stand-ins for ``dpkg``, ``apt-get``, ``id``
and ``sudo`` first on PATH (they log their arguments), and a stand-in virtual environment that is
already installed, so nothing on the machine is touched.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None or shutil.which("sha256sum") is None,
                                reason="needs bash and sha256sum (coreutils)")


def _tool(bin_dir: Path, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def _run(tmp_path: Path, *, installed: set[str], uid: int, sudo_ok: bool) -> tuple[str, list[str]]:
    proj = tmp_path / "proj"
    (proj / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", proj / "scripts" / "setup.sh")
    (proj / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _tool(venv / "bin", "python", "exit 0")  # "import napari_cryodiag" succeeds
    (venv / ".cryodiag-installed").write_text(
        hashlib.sha256((proj / "pyproject.toml").read_bytes()).hexdigest() + "\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls.log"
    ok = " ".join(sorted(installed))
    _tool(fake, "dpkg", f'echo "dpkg $*" >> {log}\nfor p in {ok}; do [ "$2" = "$p" ] && exit 0; done\nexit 1')
    _tool(fake, "apt-get", f'echo "apt-get $*" >> {log}\nexit 0')
    _tool(fake, "id", f"echo {uid}")
    _tool(fake, "sudo", (f'echo "sudo $*" >> {log}\n[ "$2" = true ] && exit {0 if sudo_ok else 1}\n'
                         'shift\nexec "$@"'))
    env = {"PATH": f"{fake}:/usr/bin:/bin", "CRYODIAG_VENV": str(venv), "HOME": str(tmp_path)}
    r = subprocess.run([BASH, "-c", 'source scripts/setup.sh && echo "NO_QT=$CRYODIAG_NO_QT"'],
                       cwd=proj, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    return r.stdout + r.stderr, calls


def _installs(calls: list[str]) -> list[str]:
    return [c for c in calls if "apt-get" in c and " install " in c]


def _qt_packages() -> set[str]:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("SYS_PKGS="))
    return set(line.split("=", 1)[1].strip('"').split())


def test_setup_installs_relion_as_root(tmp_path):
    out, calls = _run(tmp_path, installed=_qt_packages(), uid=0, sudo_ok=False)
    inst = _installs(calls)
    assert len(inst) == 1 and inst[0].split()[-1] == "relion", calls
    assert "NO_QT=0" in out  # Qt's libraries are there: the viewer tests run


def test_setup_installs_relion_with_passwordless_sudo(tmp_path):
    qt = _qt_packages()
    out, calls = _run(tmp_path, installed=qt - {"xvfb"}, uid=1000, sudo_ok=True)
    inst = [c for c in _installs(calls) if c.startswith("sudo")]  # sudo runs apt-get, which logs again
    assert [c.split()[-1] for c in inst] == ["xvfb", "relion"], calls
    assert [c.split()[-1] for c in _installs(calls) if c.startswith("apt-get")] == ["xvfb", "relion"]
    assert "NO_QT=0" in out


def test_setup_says_when_relion_cannot_be_installed(tmp_path):
    out, calls = _run(tmp_path, installed=_qt_packages(), uid=1000, sudo_ok=False)
    assert _installs(calls) == []
    assert "RELION is not installed (Debian package relion)" in out
    assert "sudo apt-get install -y relion" in out
    assert "NO_QT=0" in out  # RELION missing does not turn the viewer tests off


def test_setup_is_quiet_and_installs_nothing_when_all_is_there(tmp_path):
    out, calls = _run(tmp_path, installed=_qt_packages() | {"relion"}, uid=0, sudo_ok=True)
    assert not [c for c in calls if c.startswith(("apt-get", "sudo"))]
    assert all(c.startswith("dpkg -s") for c in calls) and len(calls) == len(_qt_packages()) + 1
    assert "setup:" not in out
