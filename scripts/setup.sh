#!/usr/bin/env bash
# Shared set-up for scripts/test.sh and scripts/demo.sh (source it; do not run it alone).
# - installs the system libraries Qt needs under Xvfb (Debian), when missing and permitted;
# - creates the virtual environment .venv and installs the package with its test extras,
#   re-installing only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRYODIAG_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

SYS_PKGS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxcb-randr0 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3"

missing=""
for p in $SYS_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq $missing >/dev/null
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        echo "setup: installing system packages with sudo:$missing" >&2
        sudo -n apt-get update -qq >/dev/null
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "setup: missing system packages:$missing" >&2
        echo "setup: install them with:  sudo apt-get install -y$missing" >&2
        CRYODIAG_NO_QT=1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtual environment $VENV" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.cryodiag-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import napari_cryodiag" 2>/dev/null; then
    echo "setup: installing napari-cryodiag and its test dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[testing]"
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export CRYODIAG_NO_QT="${CRYODIAG_NO_QT:-0}"
