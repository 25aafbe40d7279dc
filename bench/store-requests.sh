#!/bin/sh
# bench/store-requests.sh: store requests of logship-agent per 1,000
# transactions, for the file store and for S3 (OpenStack Swift's s3api, as
# tests/integration/lib-swift.sh starts it: it answers 501 to conditional
# PUTs, so put_if_absent is HEAD then PUT there).  The counts are the
# agent's own (its "stopped: ... store requests: ..." log line: calls of
# each store operation, and every HTTP request sent, retries included).
#
# For each store, three runs on one source (pgbench scale 1, 4 clients):
#   start-up  the agent resumes and stops with nothing to capture (--endpos
#             at the current position): the fixed cost of a run;
#   live      the agent streams while pgbench runs TXNS transactions at
#             RATE per second (segments close every --flush-interval, 1 s);
#   backlog   the agent is stopped during TXNS transactions, then captures
#             them with --endpos (segments close at 10,000 transactions).
# Per 1,000 transactions = (requests - start-up requests) * 1000 / TXNS.
#
#   BUILD=build bench/store-requests.sh [TXNS [RATE]]   (default 20000 1000)
# Needs what the integration tests need (tools/bootstrap); run as root or
# as the owner of the PostgreSQL installation.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(dirname "$here")
top_builddir=$(cd "${BUILD:-$top_srcdir/build}" && pwd)
TXNS=${1:-20000}
RATE=${2:-1000}
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/lib-swift.sh"

pg_start src || { echo "cannot start PostgreSQL" >&2; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
swift_start || { echo "cannot start Swift" >&2; exit 1; }
swift_mb bench || { echo "cannot create the bucket" >&2; exit 1; }
S3OPTS="--s3-endpoint $S3_ENDPOINT --s3-uri-style path --s3-region us-east-1"

pgbench_run() {	# pgbench_run [-R RATE]
	"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 4 -j 2 \
	    -t $((TXNS / 4)) "$@" postgres >/dev/null 2>&1
}
requests() {	# requests LOG: the last run's counts, "op=N ..."
	grep "store requests:" "$1" | tail -n 1 | sed 's/.*store requests: //'
}
txns_of() {	# txns_of LOG: transactions the last run stored
	grep "stopped:" "$1" | tail -n 1 | sed 's/.*stopped: \([0-9]*\) transactions in \([0-9]*\) segments.*/\1 \2/'
}

measure() {	# measure NAME STORE [OPTIONS...]
	name=$1; store=$2; shift 2
	log="$T/$name.log"
	slot="req_$name"
	"$AGENT" --source "$SRC" --store "$store" --init --slot "$slot" "$@" > "$log" 2>&1 &
	a=$!; track_pid $a
	i=0; until grep -q "streaming generation" "$log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
	kill -TERM $a; wait $a
	end=$(psql_at "$P" -c "select pg_current_wal_lsn()")
	"$AGENT" --source "$SRC" --store "$store" --slot "$slot" --endpos "$end" "$@" >> "$log" 2>&1
	startup=$(requests "$log")
	n0=$(grep -c "streaming generation" "$log")
	"$AGENT" --source "$SRC" --store "$store" --slot "$slot" "$@" >> "$log" 2>&1 &
	a=$!; track_pid $a
	i=0; until [ "$(grep -c "streaming generation" "$log")" -gt "$n0" ] || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
	pgbench_run -R "$RATE"
	sleep 2
	kill -TERM $a; wait $a
	live=$(requests "$log"); live_t=$(txns_of "$log")
	pgbench_run
	end=$(psql_at "$P" -c "select pg_current_wal_lsn()")
	"$AGENT" --source "$SRC" --store "$store" --slot "$slot" --endpos "$end" "$@" >> "$log" 2>&1
	backlog=$(requests "$log"); backlog_t=$(txns_of "$log")
	psql_at "$P" -c "select pg_drop_replication_slot('$slot')" >/dev/null
	for run in "start-up|$startup|0 -" "live|$live|$live_t" "backlog|$backlog|$backlog_t"; do
		printf '%s\n' "$run" | awk -F'|' -v name="$name" -v base="$startup" '
		function total(s,   n, i, kv, t) { n = split(s, kv, " "); t = 0
			for (i = 1; i <= n; i++) { split(kv[i], x, "="); if (x[1] != "http") t += x[2] }
			return t }
		function http(s,   n, i, kv) { n = split(s, kv, " ")
			for (i = 1; i <= n; i++) { split(kv[i], x, "="); if (x[1] == "http") return x[2] }
			return 0 }
		{ split($3, ts, " "); txns = ts[1]; segs = ts[2]
		  ops = total($2); h = http($2)
		  per = txns > 0 ? sprintf("%.2f", (ops - total(base)) * 1000 / txns) : "-"
		  hper = txns > 0 ? sprintf("%.2f", (h - http(base)) * 1000 / txns) : "-"
		  printf "| %s | %s | %s | %s | %s | %d | %d | %s | %s |\n", name, $1, txns, segs, $2, ops, h, per, hper }'
	done
}

echo "| store | run | transactions | segments | requests (agent's count) | store calls | HTTP requests | store calls per 1,000 txns (beyond start-up) | HTTP requests per 1,000 txns (beyond start-up) |"
echo "|---|---|---|---|---|---|---|---|---|"
measure file "$T/store"
measure s3 "s3://bench/req" $S3OPTS
