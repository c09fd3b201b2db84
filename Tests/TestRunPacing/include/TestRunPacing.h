// This target has no API: linking it into the test bundle bounds how many tests Swift Testing runs at once.
// See TestRunPacing.c.
