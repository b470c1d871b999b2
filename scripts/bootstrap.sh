#!/usr/bin/env bash
# Installs what Onsite needs to run, on a fresh Debian machine or an existing checkout:
# system packages (when root), the virtual environment and the npm proxy. Idempotent:
# a second run only checks stamps.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${ONSITE_EXTRAS:-test}

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# As root the hub isolates sessions: OS accounts (useradd) and nftables rules per session.
if [ "$(id -u)" = 0 ]; then command -v nft >/dev/null || need_apt+=(nftables); fi
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "bootstrap: please install: ${need_apt[*]} (sudo apt-get install ${need_apt[*]})" >&2; exit 1
  fi
fi
python3 - <<'PY' || { echo "bootstrap: Onsite needs Python >= 3.11" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY

stamp="$VENV/.onsite-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python packages into $VENV (first run takes a minute or two)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi

if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
  echo "bootstrap: installing configurable-http-proxy into ./node_modules"
  npm ci --no-audit --no-fund --loglevel=error
fi
