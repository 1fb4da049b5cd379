#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh machine, then runs the suite.
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
# Under pyenv, new console scripts (accelerate, streamlit) get their shims only after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi

# Browser tests drive Debian's chromium (Playwright cannot download its own browsers here).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install Debian's chromium; browser tests will fail" >&2
fi

# No test may reach a model hub: the tiny offline model stands in, loaded the way users load SD.
export HF_HUB_OFFLINE=1
# Two workers, each taking whole test files (module fixtures such as one app server per browser
# module stay whole); most tests wait on subprocesses and browsers, so two overlap well even on two
# cores (benchmarks/results/2026-12-06-cpu-2core-test-suite.txt has the times). SDAUDIT_TEST_WORKERS=0 runs in one process.
status=0
python -m pytest -n "${SDAUDIT_TEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "error: pytest collected no tests; that is not a passing run" >&2
fi
exit "$status"
