#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL on 127.0.0.1 for tests and benchmarks.
#   scripts/postgres.sh start DIR PORT   -> prints the database URL
#   scripts/postgres.sh stop DIR
# initdb refuses to run as root, so the cluster runs as the postgres user.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 1; }
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
	port=${3:-55433}
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	if [ ! -d "$dir/data" ]; then
		as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
	fi
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
		-w start >/dev/null
	echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
	;;
*)
	echo "usage: $0 start DIR [PORT] | stop DIR" >&2
	exit 2
	;;
esac
