#!/usr/bin/env bash
# Shared set-up for scripts/test.sh and scripts/demo.sh (source it; do not run it alone).
# - installs the system libraries Qt needs under Xvfb (Debian), and Debian's `relion` (RELION 3.1:
#   relion_postprocess, relion_autopick, relion_preprocess … that tests compare against), when missing
#   and apt is permitted (root or passwordless sudo); says what is missing otherwise (tests that need
#   RELION then skip with a reason). Installed packages are found with `dpkg -s` and not touched;
# - creates the virtual environment .venv and installs the package with its test extras,
#   re-installing only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRYODIAG_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

SYS_PKGS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxcb-randr0 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3"
# optional: without it only the tests that compare against RELION skip
OPT_PKGS="relion"

missing=""
for p in $SYS_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
missing_opt=""
for p in $OPT_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing_opt="$missing_opt $p"
done
if [ -n "$missing$missing_opt" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages:$missing$missing_opt" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        [ -z "$missing" ] || apt-get install -y -qq $missing >/dev/null
        # RELION alone: an apt that cannot find it (not Debian, no network) does not stop the set-up
        [ -z "$missing_opt" ] || apt-get install -y -qq $missing_opt >/dev/null \
            || echo "setup: could not install$missing_opt; the tests that need RELION will skip" >&2
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        echo "setup: installing system packages with sudo:$missing$missing_opt" >&2
        sudo -n apt-get update -qq >/dev/null
        [ -z "$missing" ] || sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
        [ -z "$missing_opt" ] || sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing_opt >/dev/null \
            || echo "setup: could not install$missing_opt; the tests that need RELION will skip" >&2
    else
        if [ -n "$missing" ]; then
            echo "setup: missing system packages:$missing" >&2
            CRYODIAG_NO_QT=1
        fi
        [ -z "$missing_opt" ] || echo "setup: RELION is not installed (Debian package relion): the tests that need it will skip" >&2
        echo "setup: install them with:  sudo apt-get install -y$missing$missing_opt" >&2
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
