#!/usr/bin/env bash
# One set-up step shared by `make demo`, `make test` and tools/install.sh: system packages,
# the virtual environment, and the models. Idempotent: a second run only checks.
#
#   bootstrap.sh           the runtime, the `demo` and `central` extras (make demo)
#   bootstrap.sh --test    also the `test` extra and the type stubs (make test)
#   bootstrap.sh --device  the runtime only: what a box needs (tools/install.sh)
#   bootstrap.sh --central the runtime and the `central` extra, no models (install.sh --central)
#
# System packages are installed when running as root; otherwise the exact install line is
# printed and the script stops, because silently skipping them would only move the failure
# to a confusing place later.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
WITH_TEST=0
WITH_MODELS=1
EXTRAS="[demo,central]"
case "${1:-}" in
    --test) WITH_TEST=1; EXTRAS="[demo,central,test]" ;;
    --device) EXTRAS="" ;;
    --central) EXTRAS="[central]"; WITH_MODELS=0 ;;
    "") ;;
    *) echo "usage: $0 [--test|--device|--central]" >&2; exit 2 ;;
esac

say() { printf '[setup] %s\n' "$*" >&2; }

# --- 1. Python itself --------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    say "no '$PYTHON' on PATH. Install Python 3.10 or newer: apt-get install -y python3 python3-venv"
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    say "$("$PYTHON" --version 2>&1) is too old; the appliance needs Python >= 3.10 (set PYTHON=...)"
    exit 1
fi

# --- 2. System packages: "check command|debian package" ----------------------------------
# Each entry is checked by running the command; only the missing packages are installed.
checks=(
    "$PYTHON -c 'import venv, ensurepip'|python3-venv"
    # the camera: GStreamer with its introspection data, and what PyGObject builds against
    "command -v gst-launch-1.0|gstreamer1.0-tools"
    "gst-inspect-1.0 appsink|gstreamer1.0-plugins-base"
    "gst-inspect-1.0 jpegdec|gstreamer1.0-plugins-good"
    "gst-inspect-1.0 avdec_h264|gstreamer1.0-libav"  # H.264 files and RTSP off a Jetson
    "ls /usr/lib/*/girepository-1.0/Gst-1.0.typelib|gir1.2-gstreamer-1.0"
    "ls /usr/lib/*/girepository-1.0/GstApp-1.0.typelib|gir1.2-gst-plugins-base-1.0"
    "pkg-config --exists gobject-introspection-1.0|libgirepository1.0-dev"
    "pkg-config --exists cairo|libcairo2-dev"
    "command -v pkg-config|pkg-config"
    # the demo's throwaway broker, and the tests' real one
    "test -x /usr/sbin/mosquitto|mosquitto"
)
if [ "$WITH_TEST" = 1 ]; then
    checks+=("command -v openssl|openssl")  # the tests make a throwaway PKI
    checks+=("command -v systemd-analyze|systemd")  # the tests verify the unit
    # the collector's tests: a throwaway PostgreSQL server, and the console in a real browser
    checks+=("ls /usr/lib/postgresql/*/bin/initdb|postgresql")
    checks+=("test -x /usr/bin/chromium|chromium")
fi
missing=()
for entry in "${checks[@]}"; do
    check="${entry%%|*}"
    package="${entry##*|}"
    if ! eval "$check" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    line="apt-get install -y ${missing[*]}"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        say "installing system packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "missing system packages. Run this, then run the same make command again:"
        printf '    sudo %s\n' "$line" >&2
        exit 1
    fi
fi

# the type checker's view of TensorRT 10.13 and PyGObject: stubs only, --no-deps, because
# their declared dependencies are the real libraries (TensorRT's come from NVIDIA's index),
# and in their own folder: the TensorRT stubs' bare `tensorrt/` folder would otherwise pass
# for an installed TensorRT (pyproject's [tool.basedpyright] extraPaths points there)
STUBS=(tensorrt-stubs==10.13.0.35.1 pygobject-stubs==2.20.0)

# a Jetson: CUDA's Python bindings for its CUDA version and NumPy 1 (tools/jetson_packages.sh
# says why); TensorRT's Python bindings come from JetPack (python3-libnvinfer)
JETSON=()
if [ -f /etc/nv_tegra_release ]; then
    if mapfile -t JETSON < <(bash tools/jetson_packages.sh); then
        "$PYTHON" -c 'import tensorrt' 2>/dev/null \
            || say "JetPack's TensorRT Python bindings are missing: sudo apt install python3-libnvinfer"
    else
        JETSON=()  # said why; the ONNX Runtime back end still works
    fi
fi

# --- 3. Virtual environment --------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    venv_options=()
    # on a Jetson the venv must see JetPack's TensorRT (a system package)
    if [ "${VENV_SYSTEM_SITE:-0}" = 1 ] || [ -f /etc/nv_tegra_release ]; then
        venv_options+=(--system-site-packages)
    fi
    "$PYTHON" -m venv "${venv_options[@]}" "$VENV"
fi
stamp="$VENV/.installed"
want="$(sha256sum pyproject.toml | cut -c1-16)$EXTRAS ${JETSON[*]}"
[ "$WITH_TEST" = 1 ] && want="$want ${STUBS[*]}"
if ! grep -qxF "$want" "$stamp" 2>/dev/null; then
    say "installing the edge package and its dependencies into $VENV (first run: about a minute)"
    log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip \
           && "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".$EXTRAS" \
                "${JETSON[@]}" \
           && { [ "$WITH_TEST" = 0 ] || "$VENV/bin/python" -m pip install \
                --disable-pip-version-check --no-deps --upgrade --target "$VENV/typestubs" \
                "${STUBS[@]}"; }; } >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" | tail -n 25 >&2
        say "pip install failed; the full log is $log"
        exit 1
    fi
    echo "$want" >>"$stamp"
fi

# --- 4. Models (not at the centre) -------------------------------------------------------
if [ "$WITH_MODELS" = 1 ]; then
    "$VENV/bin/edge" models prepare
fi
