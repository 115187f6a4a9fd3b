#!/usr/bin/env bash
# Set up facial-emotion on Debian/Ubuntu with Python 3.12 or 3.13, then optionally run it.
#   ./install.sh                 set up only (system packages, .venv, the package)
#   ./install.sh --run [ARGS]    set up, then run `facial-emotion ARGS` (no ARGS: the app)
#   ./install.sh --test [ARGS]   set up with test tools, then run the test suite (pytest ARGS)
set -euo pipefail
cd "$(dirname "$0")"

mode=setup
case "${1:-}" in
  --run) mode=run; shift ;;
  --test) mode=test; shift ;;
  -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
esac

# System libraries: PortAudio (microphone), ffmpeg (audio tracks, recordings), the Qt
# runtime (EGL/GL, xkbcommon, xcb, fontconfig), Xvfb (screenshots), flite and
# pocketsphinx-testdata (real speech for the tests).
APT_PACKAGES=(
  ffmpeg libportaudio2 flite pocketsphinx-testdata xvfb xauth x11-utils
  libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-image0 libxcb-xfixes0 libxcb-xkb1
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "facial-emotion needs these system packages; install them, then run this again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python 3.12 or 3.13. Not 3.11: there PySide6 (6.12 seen) takes a reference off `None` on
# every QPainter call that returns nothing, and the window aborts after minutes of painting
# ("none_dealloc"); from 3.12 `None` is immortal. TensorFlow, dlib-bin, LiteRT and PySide6
# all have wheels for 3.12 and 3.13. pyenv's interpreters are looked up directly, so an
# unselected pyenv version is found too.
py_ok() { "$1" -c 'import sys, venv; sys.exit(not ((3, 12) <= sys.version_info[:2] < (3, 14)))' 2>/dev/null; }
PY=""
cands=(python3.12 python3.13 python3)
pyroot=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for d in "$pyroot"/versions/3.12* "$pyroot"/versions/3.13*; do
  [ -x "$d/bin/python3" ] && cands+=("$d/bin/python3")
done
for cand in "${cands[@]}"; do
  if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  echo "facial-emotion needs Python 3.12 or 3.13 with venv (3.11 crashes the window: see README)." >&2
  echo "  e.g. pyenv install 3.12, or sudo apt-get install -y python3.12 python3.12-venv" >&2
  exit 1
fi
# A .venv made earlier with an unsupported Python (3.11) is made anew.
if [ -x .venv/bin/python ] && ! py_ok .venv/bin/python; then
  echo "replacing .venv: it runs $(.venv/bin/python -V 2>&1), which is not supported"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "cannot create .venv: install the venv module (sudo apt-get install -y python3-venv)" >&2; exit 1; }
fi
extras=""
[ "$mode" = test ] && extras="[test]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"

case "$mode" in
  run) exec .venv/bin/facial-emotion "$@" ;;
  test) exec env QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest "$@" ;;
  *) echo "ready: run .venv/bin/facial-emotion (or python main.py inside .venv)" ;;
esac
