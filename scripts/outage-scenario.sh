#!/usr/bin/env bash
# Issue 13: requests upstream per client request while every provider is down, before and after the engine's
# redesign, in one run. Builds Benchmarks' OutageScenario executable in release mode twice, against this checkout's
# library (new) and against the library of the commit before the redesign (old, c2cb4fa, checked out as a
# temporary git worktree), runs old then new, and prints both tables and the ratios new/old.
#
# Rows: every provider answers 503 / hangs (attempt timeout 2 s) for the whole run, for a chain of one and of three
# providers; and a provider down (503) for 6 s, then healthy, alone or as the primary of three. 64 client loops send
# chat requests back to back for 20 s per row. The mock LLM server runs in a child process of the scenario.
# See Benchmarks/Sources/OutageScenario/main.swift for what each figure means.
#
# Usage: scripts/outage-scenario.sh [--duration 20] [--concurrency 64] [--attempt-timeout 2] [--down 6] [--only 1,2,...]
#
# Environment:
#   OUTAGE_OLD_COMMIT   the engine to compare against (default c2cb4fa)
#   OUTAGE_OLD_TREE     where its worktree goes (default /tmp/outage-old; removed at the end)
#   OUTAGE_SCRATCH      build directories, one per tree: $OUTAGE_SCRATCH/new and /old
#                       (default Benchmarks/.build/outage)
#   OUTAGE_NEW_ONLY=1   build and run this checkout only
#
# The first build of each tree compiles AsyncHTTPClient, SwiftNIO and BoringSSL in release mode: several minutes on
# 2 cores. The runs take about 2 × 6 × 20 s with the defaults.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old_commit="${OUTAGE_OLD_COMMIT:-c2cb4fa}"
old_tree="${OUTAGE_OLD_TREE:-/tmp/outage-old}"
scratch="${OUTAGE_SCRATCH:-$root/Benchmarks/.build/outage}"
new_only="${OUTAGE_NEW_ONLY:-0}"
results="$scratch/results"
mkdir -p "$scratch/new" "$scratch/old" "$results"

added_worktree=0
cleanup() {
    if [[ "$added_worktree" == 1 ]]; then
        git -C "$root" worktree remove --force "$old_tree" || true
    fi
}
trap cleanup EXIT

echo "== Building the new engine's scenario (release, $scratch/new)" >&2
(cd "$root/Benchmarks" && swift build -c release --scratch-path "$scratch/new" --product OutageScenario >&2)
new_bin="$(cd "$root/Benchmarks" && swift build -c release --scratch-path "$scratch/new" --show-bin-path)"
# What the new binary was built from (others may commit in this checkout meanwhile).
new_label="new engine ($(git -C "$root" rev-parse --short HEAD)"
if [[ -n "$(git -C "$root" status --porcelain -- Sources Package.swift)" ]]; then
    new_label+=" + uncommitted changes in Sources/"
fi
new_label+=")"

if [[ "$new_only" != 1 ]]; then
    echo "== Checking out $old_commit at $old_tree" >&2
    if [[ -e "$old_tree" ]]; then
        echo "$old_tree exists; remove it (git worktree remove --force $old_tree) or set OUTAGE_OLD_TREE" >&2
        exit 1
    fi
    git -C "$root" worktree add --detach "$old_tree" "$old_commit" >&2
    added_worktree=1
    # The old tree's benchmark package has the same layout and manifest but no OutageScenario: copy the scenario
    # and this manifest (which declares it) in, and pin the same dependency versions as the new build.
    mkdir -p "$old_tree/Benchmarks/Sources/OutageScenario"
    cp "$root/Benchmarks/Sources/OutageScenario/"*.swift "$old_tree/Benchmarks/Sources/OutageScenario/"
    cp "$root/Benchmarks/Package.swift" "$old_tree/Benchmarks/Package.swift"
    if [[ -f "$root/Benchmarks/Package.resolved" ]]; then
        cp "$root/Benchmarks/Package.resolved" "$old_tree/Benchmarks/Package.resolved"
    fi
    echo "== Building the old engine's scenario (release, $scratch/old)" >&2
    (cd "$old_tree/Benchmarks" && swift build -c release --scratch-path "$scratch/old" --product OutageScenario >&2)
    old_bin="$(cd "$old_tree/Benchmarks" && swift build -c release --scratch-path "$scratch/old" --show-bin-path)"

    echo "== Running the old engine ($old_commit)" >&2
    "$old_bin/OutageScenario" --engine "old engine ($old_commit)" --json "$results/old.json" "$@"
fi

echo "== Running the $new_label" >&2
"$new_bin/OutageScenario" --engine "$new_label" --json "$results/new.json" "$@"

if [[ "$new_only" != 1 ]]; then
    "$new_bin/OutageScenario" --compare "$results/old.json" "$results/new.json"
fi
