#!/usr/bin/env bash
# make test's two notebook checks, at the same time, each against a local cloud of its own:
#   nbval   every notebook as committed (normal timing), its checked outputs compared;
#   timing  the course through the runner under the AWS timing profile, each notebook twice.
# Most of a notebook's time is spent waiting (for tasks, metrics, health checks), so the two
# overlap well on two cores. Each writes its log to build/test-logs/; both logs are printed
# when both are done, and the script fails if either failed.
# Usage: scripts/notebook-checks.sh PYTHON [NOTEBOOK ...]   (no notebook: all of them)
set -u
py="$1"
shift
logs="build/test-logs"
mkdir -p "$logs"

start() {  # start NAME COMMAND...: run COMMAND in the background with a private local cloud
    local name="$1"
    shift
    (
        export LOCALCLOUD_STATE_DIR="$PWD/build/test-localcloud-$name" LOCALCLOUD_PORT=0
        "$@"
        status=$?
        "$py" -m localcloud down >/dev/null 2>&1
        exit "$status"
    ) >"$logs/$name.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
}

pids=()
names=()
nbval_paths=()
for notebook in "$@"; do nbval_paths+=(notebooks/"$notebook"_*.ipynb); done
[ "$#" -gt 0 ] || nbval_paths=(notebooks/)
start nbval "$py" -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
    --nbval-sanitize-with tests/sanitize.cfg "${nbval_paths[@]}"
# Creation and deletion times at half the profile's default (LIFECYCLE_FACTOR): still long
# enough that code which does not wait for a status fails, and the run stays in budget.
start timing env LOCALCLOUD_LIFECYCLE_FACTOR=0.05 \
    "$py" -m helpers.runner --timing aws --twice --quick \
    --output-dir build/test-executed "$@"

trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
began=$SECONDS
minutes=0
while :; do  # a line a minute, so CI shows the run is alive
    running=()
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[$i]}" 2>/dev/null; then running+=("${names[$i]}"); fi
    done
    [ "${#running[@]}" -gt 0 ] || break
    sleep 5
    if [ $(((SECONDS - began) / 60)) -gt "$minutes" ]; then
        minutes=$(((SECONDS - began) / 60))
        echo "notebook checks: $minutes min, still running: ${running[*]}"
    fi
done

failed=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    status=$?
    echo
    echo "===== ${names[$i]} (exit $status): $logs/${names[$i]}.log ====="
    cat "$logs/${names[$i]}.log"
    [ "$status" -eq 0 ] || failed=1
done
exit "$failed"
