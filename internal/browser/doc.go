// Package browser holds upbuild's browser tests: Debian's Chromium, headless
// and driven over the DevTools protocol by chromedp, reads the dashboard of a
// real upbuild server whose runs come from the GitLab simulator (see
// stacktest). The tests check what a person sees: MR titles shown as text,
// jobs and logs on their pages, the live log growing while a job runs,
// signing in through GitLab, and who may change a project's settings. Each
// checked page is saved as a full-page PNG screenshot, in
// $UPBUILD_TEST_ARTIFACTS or else <repository>/test-artifacts/screenshots.
//
// The tests run in parallel with each other: each has its own simulator,
// upbuild and browser, and most of their time is spent waiting for jobs.
package browser
