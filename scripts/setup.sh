#!/usr/bin/env bash
# Installs what `make demo`, `make test` and `make bench` need on a Debian machine:
# the broker and database servers and the browser from Debian, the project in a virtualenv,
# and the JavaScript the tests and the console use from npm through their lockfiles.
set -euo pipefail
venv=${1:-.venv}

missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v influxd >/dev/null || missing+=(influxdb)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v openssl >/dev/null || missing+=(openssl)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the console's browser tests (Playwright drives it)
command -v valgrind >/dev/null || missing+=(valgrind)  # bench/instructions.py counts with it
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[test,bench]"

# The official AsyncAPI parser, which the tests use to check `choreo asyncapi`'s document.
asyncapi=tools/asyncapi
if [ ! -f "$asyncapi/node_modules/.package-lock.json" ] || [ "$asyncapi/package-lock.json" -nt "$asyncapi/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$asyncapi" --no-audit --no-fund --loglevel=error
fi
# The web console's chart and graph libraries, which it serves at /vendor/ (gateway/console/vendor.py).
console=tools/console
if [ ! -f "$console/node_modules/.package-lock.json" ] || [ "$console/package-lock.json" -nt "$console/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$console" --no-audit --no-fund --loglevel=error
fi
echo "setup: ready ($("$venv/bin/python" --version), $(/usr/sbin/mosquitto -h 2>/dev/null | head -1), influxd $(influxd version 2>/dev/null | awk '{print $2}'))"
