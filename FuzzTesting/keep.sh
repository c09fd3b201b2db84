#!/bin/bash
# Minimizes a crashing input and keeps it as FailCases/<target>/<name>, then prints how it fails.
# usage: keep.sh TARGET CRASH-FILE NAME [--release]
set -eu
FuzzTestingDir=$(cd "$(dirname "$0")" && pwd)
cd "${FuzzTestingDir}"
TARGET="${1}"; CRASH="${2}"; NAME="${3}"; CONFIG=debug
if [[ "${4:-}" == "--release" ]]; then CONFIG=release; fi
export SWIFT_BACKTRACE=enable=no
mkdir -p "FailCases/${TARGET}"
out="FailCases/${TARGET}/${NAME}"
# libFuzzer keeps the smallest input that still crashes within the runs (the same crash or another: check below).
nice -n 19 timeout -s KILL 300 ".build/${CONFIG}/${TARGET}" -minimize_crash=1 -runs=20000 -max_total_time=120 \
  -exact_artifact_path="${out}" "${CRASH}" > ".build/fuzz/logs/minimize-${TARGET}-${NAME}.log" 2>&1 < /dev/null || true
[[ -s "${out}" ]] || cp "${CRASH}" "${out}"
echo "kept ${out} ($(wc -c < "${out}") bytes, from $(wc -c < "${CRASH}"))"
timeout -s KILL 60 ".build/${CONFIG}/${TARGET}" "${out}" 2>&1 < /dev/null | grep -v '^ *0x\|Shadow\|^  [A-Z][a-z]' | grep -m12 -E 'Fatal error|ERROR|SUMMARY|#[0-9]+ .* in ' || true
