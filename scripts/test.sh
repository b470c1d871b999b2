#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real components the tests
# start (OpenLDAP slapd, Chromium, CJK fonts, PostgreSQL when none answers), then pytest: every
# tier of tests/README.md, the lint and the import contracts included (tests/unit/test_code_rules.py).
# Extra arguments go to pytest, e.g. `make test ARGS="tests/unit -x"`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

pkgs=()
[ -x /usr/sbin/slapd ] || pkgs+=(slapd)
command -v ldapadd >/dev/null || pkgs+=(ldap-utils)
command -v chromium >/dev/null || pkgs+=(chromium)
fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || pkgs+=(fonts-noto-cjk)
command -v nft >/dev/null || pkgs+=(nftables)    # per-session network rules (hub_config.netfilter)
command -v slurmctld >/dev/null || pkgs+=(slurm-wlm)  # a one-node cluster for Slurm sessions (tests/security/test_slurm_sessions.py)
command -v munged >/dev/null || pkgs+=(munge)
pg_answers() { "$VENV/bin/python" - "$1" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
}
PG_URL=${ONSITE_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
if ! pg_answers "$PG_URL"; then
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql)
fi
if ((${#pkgs[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "test: missing ${pkgs[*]}; the tests that need them will be skipped (run as root to install)" >&2
  fi
fi

if ! pg_answers "$PG_URL"; then
  # No PostgreSQL answers: start a throwaway cluster on a free port for this run.
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  pgdir=$(mktemp -d /tmp/onsite-pg.XXXXXX)
  port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run_as=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdir"; run_as=(runuser -u postgres --); fi
  "${run_as[@]}" "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1" -l "$pgdir/log" -w start >/dev/null
  trap '"${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1; rm -rf "$pgdir"' EXIT
  PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "test: started a throwaway PostgreSQL on port $port"
fi
export ONSITE_TEST_PG="$PG_URL"

# pytest-xdist: ONSITE_TEST_WORKERS processes; the tests that start hubs run one after another on one of
# them (the xdist groups of tests/conftest.py). `-n 0` or `-p no:xdist` in the arguments: one process.
parallel=(-n "${ONSITE_TEST_WORKERS:-3}" --dist loadgroup)
[[ "$*" == *no:xdist* ]] && parallel=()

rc=0
"$VENV/bin/python" -m pytest "${parallel[@]}" "$@" || rc=$?
if [ "$rc" = 5 ]; then echo "test: pytest collected no tests: that is a failure" >&2; exit 1; fi
exit "$rc"
