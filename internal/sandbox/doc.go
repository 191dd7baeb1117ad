// Package sandbox runs untrusted commands (Packit actions, rpmbuild, tests
// from merge requests) inside a bubblewrap sandbox. Every command that comes
// from a repository goes through Sandbox.Run; callers run Sandbox.Check at
// start-up and refuse untrusted jobs when it fails.
//
// Threat model: the command and everything it starts are hostile. This
// package covers:
//
//   - Host files. The root inside is built from an allow-list: /usr and a few
//     named files under /etc read-only (from the host, or from an
//     operator-supplied root filesystem), /bin, /lib, /lib64 and /sbin as
//     symlinks into /usr, generated /etc/passwd, /etc/group and /etc/hosts,
//     a fresh /dev and /proc, size-limited tmpfs on /tmp and /dev/shm, the
//     job's work directory writable at /work, and the binds the caller names.
//     Everything else (/root, /home, /run and its sockets, /var/lib,
//     upbuild's data directory, the repository cache, other jobs' work
//     directories) does not exist inside. The sandbox root itself is
//     remounted read-only after it is assembled.
//   - Secrets. The environment starts empty; only PATH, HOME, LANG, TMPDIR and
//     the variables the caller passes are set. No file descriptor other than
//     the output pipe is inherited.
//   - Other processes and the network. Fresh user, mount, PID, IPC, UTS,
//     cgroup and network namespaces; only loopback exists inside unless the
//     command asks for the network. With Network on, the command shares the
//     host's network namespace and can reach every port on the host's
//     loopback too: operators who enable it accept that.
//   - Privilege. Each concurrent job runs as its own unprivileged host UID
//     from the configured range (credentials are dropped before bwrap
//     starts, so bwrap runs unprivileged with a user namespace and the
//     command has no capabilities). Nested user namespaces are disabled.
//   - Resources. Wall time (the context and Limits.Wall), CPU time
//     (RLIMIT_CPU), memory (RLIMIT_AS, or memory.max under cgroup v2),
//     processes (RLIMIT_NPROC per job UID, or pids.max), file size
//     (RLIMIT_FSIZE), work directory size (polled), tmpfs size, and output
//     size. When a limit is hit, or the context ends, the whole tree is
//     killed: bwrap's process group and the sandbox's PID 1, then every
//     process the job UID owns (and the cgroup when one is in use). The PID
//     namespace's init dies with bwrap, which takes every process inside
//     with it; a run that ends on its own waits for that init to be gone
//     (the kernel empties the namespace first). A UID whose last run did
//     not confirm that is swept through /proc before it is used again.
//
// Not covered: kernel exploits (there is no seccomp filter), CPU share
// between concurrent jobs without cgroup v2, and covert channels.
package sandbox
