#!/usr/bin/env bash
# The main job: napari with the plugin on the built-in simulated sample data, every dock
# widget open (arguments go to python -m napari_cryodiag.demo, e.g. --workflow maps). Without a
# display ($DISPLAY unset) it writes the headless report instead: figures and a JSON of every
# diagnostic, in ./cryodiag-report (or $CRYODIAG_REPORT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
if [ -n "${DISPLAY:-}" ] && [ "$CRYODIAG_NO_QT" != 1 ] && [ -z "${CRYODIAG_HEADLESS:-}" ]; then
    exec python -m napari_cryodiag.demo "$@"
else
    out="${CRYODIAG_REPORT:-cryodiag-report}"
    echo "demo: no display; writing the headless report to $out/" >&2
    exec cryodiag report --out "$out" --overwrite
fi
