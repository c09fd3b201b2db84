// Bounds how many tests Swift Testing runs at once, for every `swift test` of this package.
//
// Swift Testing starts every test at once by default. On a 2-core machine that means about 400 tests interleaved on
// two cooperative threads: a test's loopback server answers only when the pool gets to it, and the client's real
// timeouts (connect, first byte, a Retry-After window) expire first. Measured on 2 cores (2026-12-02): unbounded,
// 15-40 tests failed on loopback timeouts and one hung; at four at a time the whole suite passed in 62 s.
//
// The width is read by Swift Testing's entry point from SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH, before any
// Swift code of ours runs, so it is set here by a constructor, which runs when the test bundle is loaded. A value
// already in the environment wins (set it to 1 to run the tests one at a time, or higher on a bigger machine).

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "TestRunPacing.h"

__attribute__((constructor)) static void llm_fallback_pace_test_run(void) {
    long processors = sysconf(_SC_NPROCESSORS_ONLN);
    long width = processors > 0 ? processors * 2 : 4;
    if (width < 4) width = 4;
    if (width > 16) width = 16;
    char text[8];
    snprintf(text, sizeof text, "%ld", width);
    setenv("SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH", text, 0);
}
