#!/usr/bin/env bash
# One-time set-up on a fresh machine: system tools (Icarus, Yosys) and a virtualenv with
# zeroskip and every extra needed to train, simulate and test. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
EXTRAS="${ZEROSKIP_EXTRAS:-host,sim,dev}"

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${need_apt[*]} (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "setup: warning: ${need_apt[*]} missing and cannot apt-get install (not root); Icarus/Yosys tests will fail" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
echo "setup: installing zeroskip[$EXTRAS] into .venv"
.venv/bin/pip install -q -e ".[$EXTRAS]"
.venv/bin/python -c "import zeroskip.driver, zeroskip.host; print('setup: ok')"
