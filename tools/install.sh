#!/usr/bin/env bash
# Install the appliance on a Jetson or Ubuntu/Debian box, as root.
#
#   sudo tools/install.sh                 install or update (idempotent)
#   sudo tools/install.sh --uninstall     remove what it made, keep the state (/var/lib/edge)
#   sudo tools/install.sh --uninstall --purge   ... and the state and the user too
#   sudo tools/install.sh --central       the central collector and console instead (user
#                                         edge-central, /var/lib/edge-central, its unit)
#
# Options: --prefix DIR (default /opt/edge), --skip-venv (files, user, unit only).
# EDGE_INSTALL_ROOT=DIR puts every path under DIR (for tests; no user is created there).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="$(pwd)"
ROOT="${EDGE_INSTALL_ROOT:-}"
PREFIX=/opt/edge
USER_NAME=edge
UNINSTALL=0
PURGE=0
SKIP_VENV=0
CENTRAL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --skip-venv) SKIP_VENV=1; shift ;;
        --central) CENTRAL=1; USER_NAME=edge-central; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
say() { printf '[install] %s\n' "$*"; }
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo tools/install.sh)" >&2
    exit 1
fi

APP="$ROOT$PREFIX"
ETC="$ROOT/etc/edge"
SERVICE=edge
SECRETS="mqtt-password pseudonym-key"
BOOTSTRAP=--device
if [ "$CENTRAL" = 1 ]; then
    SERVICE=edge-central
    SECRETS="central-mqtt-password central-database-url central-session-key central-metrics-token"
    BOOTSTRAP=--central
fi
STATE="$ROOT/var/lib/$SERVICE"
UNIT="$ROOT/etc/systemd/system/$SERVICE.service"
have_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }
own() {  # chown to the service user when it exists (not under a test root)
    if [ -z "$ROOT" ] && id "$USER_NAME" >/dev/null 2>&1; then chown "$@"; fi
}

if [ "$UNINSTALL" = 1 ]; then
    if have_systemd; then
        systemctl disable --now "$SERVICE.service" 2>/dev/null || true
    fi
    rm -f "$UNIT"
    have_systemd && systemctl daemon-reload
    rm -rf "$APP" "$ETC"
    say "removed $APP, $ETC and the unit"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$STATE" "$ROOT/var/log/$SERVICE"
        if [ -z "$ROOT" ] && id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME"; fi
        say "purged the state ($STATE) and the user $USER_NAME"
    else
        [ -d "$STATE" ] && say "kept the state in $STATE (enrolments, history); --purge removes it"
    fi
    exit 0
fi

# 1. the service user
if [ -z "$ROOT" ] && ! id "$USER_NAME" >/dev/null 2>&1; then
    if [ "$CENTRAL" = 1 ]; then
        useradd --system --no-create-home --home-dir "/var/lib/$SERVICE" \
            --shell /usr/sbin/nologin "$USER_NAME"
        say "created system user $USER_NAME"
    else
        groups=video
        getent group render >/dev/null && groups="$groups,render"
        useradd --system --no-create-home --home-dir /var/lib/edge --shell /usr/sbin/nologin \
            --groups "$groups" "$USER_NAME"
        say "created system user $USER_NAME (groups $groups)"
    fi
fi

# 2. the application (tracked files only: no venv, models, state or caches)
mkdir -p "$APP"
if [ "$SOURCE" != "$APP" ]; then
    if [ -d .git ]; then
        git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$APP"
    else
        tar --exclude=.venv --exclude=state --exclude='engines/*.onnx' -cf - . | tar -xf - -C "$APP"
    fi
fi
chmod 0755 "$APP"

# 3. configuration and secrets: never overwritten once there
install -d -m 0750 "$ETC"
own root:"$USER_NAME" "$ETC"
if [ ! -f "$ETC/edge.toml" ]; then
    install -m 0640 config/edge.toml "$ETC/edge.toml"
    own root:"$USER_NAME" "$ETC/edge.toml"
    say "wrote $ETC/edge.toml (edit it: broker, camera, purpose)"
fi
install -d -m 0700 "$ETC/credentials"
# the service user reads its TLS files (0640 root:edge) through this folder: 0750 root:edge
install -d -m 0750 "$ETC/tls"
own root:"$USER_NAME" "$ETC/tls"
for secret in $SECRETS; do
    if [ ! -f "$ETC/credentials/$secret" ]; then
        ( umask 077; : >"$ETC/credentials/$secret" )
        if [ "$secret" = pseudonym-key ] || [ "$secret" = central-session-key ]; then
            head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ETC/credentials/$secret"
        fi
    fi
done

# 4. state, readable by the service user only
install -d -m 0700 "$STATE"
own "$USER_NAME:$USER_NAME" "$STATE"

# 5. virtual environment and models (system packages first; JetPack's TensorRT visible)
if [ "$SKIP_VENV" = 0 ]; then
    (cd "$APP" && VENV="$APP/.venv" bash tools/bootstrap.sh "$BOOTSTRAP")
fi

# 6. the unit
install -d "$(dirname "$UNIT")"
sed "s#@PREFIX@#$PREFIX#g" "systemd/$SERVICE.service" >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
have_systemd && systemctl daemon-reload
say "installed $UNIT"

if [ "$CENTRAL" = 1 ]; then
    cat <<NEXT

Left for the operator:
  1. $ETC/edge.toml, section [central]: the broker's host and port (TLS files in $ETC/tls),
     listen_host/listen_port of the console, https_cert_file/https_key_file.
  2. $ETC/credentials/central-database-url for PostgreSQL (empty: SQLite in $STATE),
     central-mqtt-password if the broker wants one, central-metrics-token for Prometheus.
  3. The first account:  $PREFIX/.venv/bin/edge --config $ETC/edge.toml central user add \
                              NAME --role admin   (as $USER_NAME)
  4. Start:  systemctl enable --now $SERVICE.service
NEXT
    exit 0
fi

cat <<NEXT

Left for the technician:
  1. $ETC/edge.toml: [deployment] purpose and legal_basis (the service refuses to run
     without them: README "Lawful use"), [device] id and site, [camera] source,
     [mqtt] host, port and TLS files (put them in $ETC/tls, mode 0640 root:$USER_NAME).
  2. $ETC/credentials/mqtt-password if the broker wants one.
  3. Enroll consenting people:
     sudo -u $USER_NAME EDGE_STORAGE__STATE_DIR=/var/lib/edge $PREFIX/.venv/bin/edge \\
         --config $ETC/edge.toml enroll --person ID --consent REF photo.jpg
  4. Check, then start:  $PREFIX/.venv/bin/edge config check $ETC/edge.toml
                         systemctl enable --now edge.service
                         $PREFIX/.venv/bin/edge status   (as $USER_NAME)
NEXT
