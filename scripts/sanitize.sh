#!/usr/bin/env bash
# Runs the test suite under ThreadSanitizer and AddressSanitizer, each in its own scratch path (so neither
# disturbs the normal .build), and prints each run's summary and sanitizer reports.
#
# Usage: scripts/sanitize.sh [thread|address ...] [-- extra `swift test` options, e.g. --filter HardeningTests]
#
# Reports that are false because the sanitizer cannot see a lock go in scripts/tsan-suppressions.txt, narrowly
# (by function) and each with its reason beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
sanitizers=()
extra=()
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "--" ]]; then shift; extra=("$@"); break; fi
    sanitizers+=("$1"); shift
done
[[ ${#sanitizers[@]} -eq 0 ]] && sanitizers=(thread address)
status=0
for sanitizer in "${sanitizers[@]}"; do
    log=".build-${sanitizer}.log"
    echo "== swift test --sanitize=${sanitizer} (log: ${log})"
    # The sanitizers slow this code down 2-15 times: the few tests whose real-time bounds a sanitized run was seen
    # to miss multiply them by this factor (TestTimeScale in the tests' support); no outcome check changes.
    LLM_FALLBACK_TEST_TIME_SCALE="${LLM_FALLBACK_TEST_TIME_SCALE:-5}" \
    TSAN_OPTIONS="suppressions=$PWD/scripts/tsan-suppressions.txt halt_on_error=0 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=0 halt_on_error=1" \
        swift test --sanitize="${sanitizer}" --scratch-path ".build-${sanitizer}" "${extra[@]}" >"$log" 2>&1
    rc=$?
    reports=$(grep -c "WARNING: ThreadSanitizer\|ERROR: AddressSanitizer" "$log" || true)
    echo "exit ${rc}, ${reports} sanitizer reports"
    grep -E "Test run with|✘" "$log" | tail -5
    [[ $rc -ne 0 || $reports -ne 0 ]] && status=1
done
exit $status
