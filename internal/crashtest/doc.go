// Package crashtest holds the crash test of webhook intake: deliveries are
// sent while the real upbuild binary is killed with SIGKILL and restarted,
// and afterwards every delivery that got a 202 must be stored exactly once.
package crashtest
