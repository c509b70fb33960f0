// Package e2e holds the end-to-end tests of Sluice: each test builds nothing
// itself but starts the real `sluice serve` binary (built once by TestMain)
// as a child process on loopback with its own data directory, and drives it
// with franz-go (kgo, kadm) or raw kmsg frames, the way users and scripts do.
//
// Invariants the harness keeps: a child broker never outlives the test that
// started it (SIGTERM, then SIGKILL after a bound; the kernel kills it with
// SIGKILL if the test binary dies first), every wait is bounded, and the
// address a test talks to is the one its own child printed on stderr.
//
// SLUICE_BIN=path uses a prebuilt binary instead of building one;
// SLUICE_COMPAT=1 also runs test/compat/run.sh (real third-party clients).
package e2e
