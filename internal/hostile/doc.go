// Package hostile holds no code of its own: its test feeds hostile input to
// upbuild's public surfaces (the webhook endpoint, the admin API, the job
// log and artifact API, the job page, and the planner's reading of a
// project's .packit.yaml) and checks that each is refused with a clear
// answer and leaves the store as it was.
package hostile
