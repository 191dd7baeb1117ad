// Package e2e holds upbuild's end-to-end tests: the GitLab simulator sends
// real webhooks to a real upbuild server, and the tests assert what a
// maintainer would see on GitLab (commit statuses, comments, emoji), read
// from the simulator's own records.
package e2e
