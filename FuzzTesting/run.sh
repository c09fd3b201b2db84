#!/bin/bash
# Runs each fuzz target for a while on its seed corpus and prints, per target, the executions and the findings.
# Build first with ./do_build.sh. See README.md.
set -eu

FuzzTestingDir=$(cd "$(dirname "$0")" && pwd)
readonly FuzzTestingDir

printUsage() {
  NAME=$(basename "${0}")
  cat << EOF2
usage: ${NAME} [OPTIONS] [TARGET...]

Runs every target (or the ones named) for SECONDS each, under 'nice -n 19', in libFuzzer's fork mode so that a
crash does not end the run: -max_len, -rss_limit_mb=2048, -timeout=10. The working corpus grows in
.build/fuzz/corpus/<target> (seeded from Corpus/<target>), crashes land in .build/fuzz/artifacts/<target>, the
logs in .build/fuzz/logs. Each distinct crash is reported with its first line (the trap's message, or the
sanitizer's summary) and one input that shows it.

OPTIONS:
   -h, --help         Show this message.
   --seconds N        How long each target runs (default 60).
   --max-len N        The longest input (default 8192).
   --release          Run the release build (default: debug).
EOF2
}

SECONDS_PER_TARGET=60
MAX_LEN=8192
CONFIG=debug
SELECTED=()
while [[ $# != 0 ]]; do
  case "${1}" in
    -h | --help ) printUsage; exit 0 ;;
    --seconds ) SECONDS_PER_TARGET="${2}"; shift ;;
    --max-len ) MAX_LEN="${2}"; shift ;;
    --release ) CONFIG=release ;;
    -*) echo "ERROR: Unknown option: ${1}" 1>&2; printUsage; exit 1 ;;
    *) SELECTED+=("${1}") ;;
  esac
  shift
done

cd "${FuzzTestingDir}"
# shellcheck source=targets.sh
source ./targets.sh
if [[ ${#SELECTED[@]} -gt 0 ]]; then FUZZ_TESTS=("${SELECTED[@]}"); fi

WORK=.build/fuzz
mkdir -p "${WORK}/logs"
# Swift's own crash handler does not get along with AddressSanitizer; libFuzzer prints the stack instead.
export SWIFT_BACKTRACE=enable=no
# Symbolizing a crash's stack takes llvm-symbolizer half a minute on these binaries: not while fuzzing (each
# kept input is replayed, symbolized, below).
FUZZ_ASAN_OPTIONS="symbolize=0"
TRIAGE_ASAN_OPTIONS="symbolize=1"
# How many kept inputs of one run are replayed to tell the findings apart.
TRIAGE_LIMIT=8

summary=()
for FUZZ_TEST in "${FUZZ_TESTS[@]}"; do
  binary=".build/${CONFIG}/${FUZZ_TEST}"
  if [[ ! -x "${binary}" ]]; then echo "ERROR: ${binary} is not built (./do_build.sh)" 1>&2; exit 1; fi
  corpus="${WORK}/corpus/${FUZZ_TEST}"
  artifacts="${WORK}/artifacts/${FUZZ_TEST}"
  log="${WORK}/logs/${FUZZ_TEST}.log"
  mkdir -p "${corpus}" "${artifacts}"
  if [[ -d "Corpus/${FUZZ_TEST}" ]]; then cp -n "Corpus/${FUZZ_TEST}"/* "${corpus}/" 2>/dev/null || true; fi
  before=$(find "${artifacts}" -type f | wc -l)
  echo "=== ${FUZZ_TEST}: ${SECONDS_PER_TARGET} s"
  # The run's own exit status says whether it crashed; the counts below say so too.
  ASAN_OPTIONS="${FUZZ_ASAN_OPTIONS}" nice -n 19 timeout -s KILL $((SECONDS_PER_TARGET + 120)) "${binary}" "${corpus}" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="${SECONDS_PER_TARGET}" -max_len="${MAX_LEN}" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="${artifacts}/" > "${log}" 2>&1 < /dev/null || true
  last=$(grep -E '^#[0-9]+: cov:' "${log}" | tail -1 || true)
  executions=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "${last}")
  counts=$(sed -E 's/.*oom\/timeout\/crash: ([0-9]+\/[0-9]+\/[0-9]+).*/\1/' <<< "${last}")
  coverage=$(sed -E 's/.*cov: ([0-9]+) .*/\1/' <<< "${last}")
  after=$(find "${artifacts}" -type f | wc -l)
  echo "executions: ${executions:-?}  coverage: ${coverage:-?}  oom/timeout/crash: ${counts:-?}  new inputs kept: $((after - before))"
  # One line per distinct finding: replay kept inputs (the newest first) and take the trap's message, if any, and
  # the first frame in the project's code that is not the fuzz harness.
  declare -A seen=()
  replayed=0
  for artifact in $(ls -t "${artifacts}" 2>/dev/null); do
    artifact="${artifacts}/${artifact}"
    [[ -f "${artifact}" && ${replayed} -lt ${TRIAGE_LIMIT} ]] || continue
    replayed=$((replayed + 1))
    trace=$(ASAN_OPTIONS="${TRIAGE_ASAN_OPTIONS}" nice -n 19 timeout -s KILL 300 "${binary}" "${artifact}" 2>&1 < /dev/null || true)
    message=$(grep -m1 -E 'Fatal error|ERROR: AddressSanitizer|ERROR: libFuzzer' <<< "${trace}" | sed -E 's/==[0-9]+==//; s/ at pc .*//' || true)
    frame=$(grep -E '^ +#[0-9]+ .* in .*/Sources/' <<< "${trace}" | grep -v -E 'FuzzEntryPoints.swift|FuzzTesting/|<compiler-generated>' \
      | head -1 | sed -E 's/.*\/Sources\//Sources\//' || true)
    reason="${message:0:110}"; reason="${reason:-(does not reproduce alone)}${frame:+ at ${frame}}"
    if [[ -z "${seen[${reason}]+x}" ]]; then
      seen[${reason}]="${artifact}"
      echo "  finding: ${reason}"
      echo "    input: ${artifact}"
    fi
  done
  summary+=("$(printf '| %-26s | %12s | %8s | %-18s | %8s |' "${FUZZ_TEST}" "${executions:-?}" "${coverage:-?}" "${counts:-?}" "${#seen[@]}")")
  unset seen
done

echo
echo "Per target, ${SECONDS_PER_TARGET} s each (${CONFIG} build, -max_len=${MAX_LEN}):"
printf '| %-26s | %12s | %8s | %-18s | %8s |\n' "target" "executions" "coverage" "oom/timeout/crash" "distinct"
printf '|%s|%s|%s|%s|%s|\n' "----------------------------" "--------------" "----------" "--------------------" "----------"
for line in "${summary[@]}"; do echo "${line}"; done
