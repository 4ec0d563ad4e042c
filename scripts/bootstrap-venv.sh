#!/usr/bin/env bash
# Create the course's virtual environment. Debian and Ubuntu ship venv support in a separate
# package (python3-venv); install it when we can, otherwise say exactly what to run.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"

if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    package="python3-venv"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "$package"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq && sudo apt-get install -y -qq "$package"
    else
        echo "error: $python cannot create virtual environments." >&2
        echo "Install venv support first:  sudo apt-get install -y $package" >&2
        exit 1
    fi
fi
"$python" -m venv "$venv"
echo "created $venv with $("$venv/bin/python" --version)"
