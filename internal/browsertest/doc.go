// Package browsertest runs Debian's real Chromium, headless, for the
// console's end-to-end tests (driven with github.com/chromedp/chromedp).
//
// New starts one browser per test with a fresh profile under the test's
// temporary directory and the flags this sandbox needs: --no-sandbox (the
// tests run as root), and no background networking, component updates or
// sync, whose connections the closed network would refuse. A missing
// chromium fails the test with the Debian package to install; it never
// skips, because a skipped browser test proves nothing.
package browsertest
