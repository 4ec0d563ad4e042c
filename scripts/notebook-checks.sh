#!/usr/bin/env bash
# make test's three notebook checks, in three streams at the same time, each stream against a
# local cloud of its own:
#   nbval    every notebook as committed (normal timing), its checked outputs compared;
#   timing   the course through the runner under the AWS timing profile, each notebook twice;
#   browser  the notebooks in JupyterLab in headless Chromium (tests/browser; which ones are
#            run with Run All: BROWSER_RUN_ALL, see the Makefile).
# Most of a notebook's time is spent waiting (for tasks, metrics, health checks), so the
# streams overlap on two cores. For the whole course the timing check is shared out: the
# notebooks of AFTER_NBVAL and AFTER_BROWSER are timed in those streams once their check is
# done, which balances the three (measured: 7.6 minutes in all; nbval 4.1 and then 22 and
# 23 3.3, the rest 6.6, the browser 3.1 and then 21 and 24 2.7; with 22-24 after nbval and
# the browser test after both streams, 8.5 and 2.9 minutes).
# Each stream writes its log to build/test-logs/; all logs are printed when all are done,
# and the script fails if any failed.
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

AFTER_NBVAL=(22 23)
AFTER_BROWSER=(21 24)
nbval() {  # nbval NOTEBOOK_PATH...
    "$py" -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
        --nbval-sanitize-with tests/sanitize.cfg "$@"
}
browser() {
    "$py" -m pytest -p no:cacheprovider tests/browser
}
timing() {  # timing OUTPUT_DIR [NOTEBOOK...]
    local out="$1"
    shift
    # Creation and deletion times at half the profile's default (LIFECYCLE_FACTOR): still
    # long enough that code which does not wait for a status fails; the run stays in budget.
    LOCALCLOUD_LIFECYCLE_FACTOR=0.05 "$py" -m helpers.runner --timing aws --twice --quick \
        --output-dir "$out" "$@"
}
nbval_all() {
    nbval notebooks/
}
then_timing() {  # then_timing NAME CHECK [NOTEBOOK...]: the CHECK function, then these timed
    local name="$1" check="$2"
    shift 2
    "$check"
    local checked=$?
    timing "build/test-executed-$name" "$@"
    local timed=$?
    [ "$checked" -eq 0 ] && [ "$timed" -eq 0 ]
}

pids=()
names=()
if [ "$#" -gt 0 ]; then
    nbval_paths=()
    for notebook in "$@"; do nbval_paths+=(notebooks/"$notebook"_*.ipynb); done
    start nbval nbval "${nbval_paths[@]}"
    start timing timing build/test-executed "$@"
    start browser browser
else
    shared=" ${AFTER_NBVAL[*]} ${AFTER_BROWSER[*]} "
    rest=()
    for path in notebooks/[0-9][0-9]_*.ipynb; do
        number=$(basename "$path")
        number=${number%%_*}
        [[ "$shared" == *" $number "* ]] || rest+=("$number")
    done
    start nbval then_timing nbval nbval_all "${AFTER_NBVAL[@]}"
    start timing timing build/test-executed "${rest[@]}"
    start browser then_timing browser browser "${AFTER_BROWSER[@]}"
fi

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
        # The load average says whether the streams wait (below 2) or share the cores.
        echo "notebook checks: $minutes min, still running: ${running[*]};" \
            "load $(cut -d' ' -f1-3 /proc/loadavg)"
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
