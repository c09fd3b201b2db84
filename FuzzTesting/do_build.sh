#!/bin/bash
# Builds the fuzz targets of llm-fallback (in the manner of swift-nio-http2's FuzzTesting/do_build.sh, itself
# derived from swift-protobuf's). See README.md.
set -eu

FuzzTestingDir=$(cd "$(dirname "$0")" && pwd)
readonly FuzzTestingDir

printUsage() {
  NAME=$(basename "${0}")
  cat << EOF2
usage: ${NAME} [OPTIONS]

Builds the fuzz targets with libFuzzer and AddressSanitizer (-sanitize=fuzzer,address), into .build/<config>/.

OPTIONS:
   -h, --help            Show this message.
   --debug-only          Build the 'debug' configuration only (the default).
   --release-only        Build the 'release' configuration only.
   --both                Build both configurations.
   --run-regressions, --run
                         After building, run every target over its kept fail cases (FailCases/<target>/).
EOF2
}

CHECK_REGRESSIONS="no"
CMD_CONFIGS=("debug")

while [[ $# != 0 ]]; do
  case "${1}" in
    -h | --help ) printUsage; exit 0 ;;
    --debug-only ) CMD_CONFIGS=("debug") ;;
    --release-only ) CMD_CONFIGS=("release") ;;
    --both ) CMD_CONFIGS=("debug" "release") ;;
    --run-regressions | --run ) CHECK_REGRESSIONS="yes" ;;
    *) echo "ERROR: Unknown argument: ${1}" 1>&2; printUsage; exit 1 ;;
  esac
  shift
done

cd "${FuzzTestingDir}"
# shellcheck source=targets.sh
source ./targets.sh

CMD_BASE=(swift build -Xswiftc "-sanitize=fuzzer,address")
if [ "$(uname)" == "Darwin" ]; then
  CMD_BASE=(xcrun --toolchain swift "${CMD_BASE[@]}")
fi

status=0
for CMD_CONFIG in "${CMD_CONFIGS[@]}"; do
  echo "------------------------------------------------------------------------------------------"
  echo "Building: ${CMD_CONFIG}"
  echo "${CMD_BASE[@]}" -c "${CMD_CONFIG}"
  "${CMD_BASE[@]}" -c "${CMD_CONFIG}"

  if [[ "${CHECK_REGRESSIONS}" == "yes" ]]; then
    for FUZZ_TEST in "${FUZZ_TESTS[@]}"; do
      cases=(FailCases/"${FUZZ_TEST}"/*)
      [[ -e "${cases[0]}" ]] || continue
      echo "------------------------------------------------------------------------------------------"
      echo "Regressing: ${FUZZ_TEST} (${#cases[@]} cases)"
      # Each case on its own, so that every one is reported (a kept case that still crashes fails the run).
      for case_file in "${cases[@]}"; do
        if ! SWIFT_BACKTRACE=enable=no ".build/${CMD_CONFIG}/${FUZZ_TEST}" "${case_file}" > /dev/null 2>&1; then
          echo "  still failing: ${case_file}"
          status=1
        fi
      done
    done
  fi
done
exit ${status}
