// Package console tests the web console (internal/console) in a real
// headless browser: Debian's Chromium driven by chromedp, against the
// `sluice serve` binary the test builds, through the console that binary
// mounts on its own HTTP listener (port 0 on loopback). Screenshots of every page go to
// SLUICE_SCREENSHOT_DIR (a temporary directory when unset; the test logs
// where). Without Chromium the test skips, except in CI (CI=true), where
// it fails: scripts/install-chromium.sh installs it.
package console
