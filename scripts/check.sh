#!/usr/bin/env bash
# The inner loop (`make check`, under 2 minutes): every test that needs no service — no
# PostgreSQL, slapd, hub or Chromium — which includes the lint (ruff) and the import contracts
# (lint-imports) as tests of their own (tests/unit/test_code_rules.py). Tiers: tests/README.md.
# Extra arguments go to pytest, e.g. `make check ARGS="tests/unit/sdc -x"`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# Byte-code caches on (__pycache__ is git-ignored): with PYTHONDONTWRITEBYTECODE set, as in some shells, each
# process (both test processes, every command a test starts) compiled our modules again and pytest rewrote the
# asserts of every test file again, ~6 CPU-s a process, on every run.
unset PYTHONDONTWRITEBYTECODE
# The property tests (hypothesis) try half of each one's examples here, all of them in `make test`
# (tests/property_examples.py): ~20 CPU-s less.
export ONSITE_PROPERTY_EXAMPLES=${ONSITE_PROPERTY_EXAMPLES:-0.5}

# pytest-xdist: ONSITE_TEST_WORKERS processes; the tests that start hubs run one after another on one of
# them (the xdist groups of tests/conftest.py). `-n 0` or `-p no:xdist` in the arguments: one process.
parallel=(-n "${ONSITE_TEST_WORKERS:-2}" --dist loadgroup)  # its tests keep a core busy: one process a core
[[ "$*" == *no:xdist* ]] && parallel=()

# Without a path: the folders that hold such tests. tests/integration, tests/security and tests/functional are
# all marked `integration` (tests/conftest.py); collecting them only to leave them out costs each process
# seconds of imports (JupyterHub, Playwright).
paths=(tests/unit tests/differential)
for arg in "$@"; do [[ -e "${arg%%::*}" ]] && paths=(); done

rc=0
"$VENV/bin/python" -m pytest "${parallel[@]}" -m "not integration and not postgresql and not browser" "${paths[@]}" "$@" || rc=$?
if [ "$rc" = 5 ]; then echo "check: pytest collected no tests: that is a failure" >&2; exit 1; fi
exit "$rc"
