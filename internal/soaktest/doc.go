// Package soaktest runs the fault-injection soak (bench/soak) in its
// 60-second smoke mode against a freshly built upbuild, as part of go test.
package soaktest
