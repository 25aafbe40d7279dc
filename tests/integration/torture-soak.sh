#!/bin/sh
# Soak (issue 14): logship-agent and a --follow restore under continuous
# pgbench load for TORTURE_SOAK_SECONDS (default 300, the 5 minutes
# issue 14 asks of make check; make check-torture: 1800).  The resident
# memory of both is sampled over time and must stay flat -- the largest
# sample of the second half at most the largest of the first half * 1.2 +
# 8 MB (not asserted on ASan builds, whose quarantine
# grows by design) -- the restore's lag behind the source's commits stays
# bounded (under 30 s at every sample), and in the end the target equals
# the source.  The series goes to the TAP output (and TORTURE_SUMMARY).
. "$(dirname "$0")/lib.sh"

SECS=${TORTURE_SOAK_SECONDS:-300}
SUMMARY=${TORTURE_SUMMARY:-/dev/null}
EVERY=$(( SECS / 40 )); [ $EVERY -lt 2 ] && EVERY=2
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 2 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.5 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" --follow > "$T/restore.log" 2>&1 &
RPID=$!; track_pid $RPID
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -R 100 -T "$SECS" postgres > "$T/pgbench.out" 2>&1 &
BPID=$!; track_pid $BPID

rss() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || echo -1; }
t0=$(date +%s); : > "$T/series"
while kill -0 $BPID 2>/dev/null; do
	sleep $EVERY
	lag=$(psql_at "$Q" -c "select coalesce(round(extract(epoch from now() - commit_time)), -1) from logship.applied" 2>/dev/null)
	echo "$(( $(date +%s) - t0 )) $(rss $APID) $(rss $RPID) ${lag:--1}" >> "$T/series"
done
wait $BPID
diag "pgbench: $(grep -E '^(number of transactions actually processed|tps)' "$T/pgbench.out" | tr '\n' ' ')"
diag "seconds agent_rss_MB restore_rss_MB lag_s (every $EVERY s):"
awk '{ printf "%s%s:%s/%s/%s", (NR > 1 ? " " : "# "), $1, $2, $3, $4 } END { print "" }' "$T/series" | fold -w 200

kill -0 $APID && kill -0 $RPID; ok $? "agent and restore ran through the soak"
n=$(wc -l < "$T/series")
flat() {	# flat COLUMN: 0 if max(second half) <= max(first half) * 1.2 + 8
	awk -v c="$1" -v n="$n" 'NR <= n / 2 { if ($c > a) a = $c; next } { if ($c > b) b = $c }
		END { printf "first half max %d MB, second half max %d MB\n", a, b; exit !(b <= a * 1.2 + 8) }' "$T/series"
}
for who in agent:2 restore:3; do
	msg=$(flat "${who#*:}"); st=$?
	if ldd "$AGENT" | grep -q libasan; then
		ok 0 "# SKIP ${who%%:*} RSS flat: ASan build ($msg)"
	else
		ok $st "${who%%:*} RSS flat over $SECS s ($msg)"
	fi
done
maxlag=$(awk '$4 > m { m = $4 } END { print m + 0 }' "$T/series")
neg=$(awk '$4 < 0 { c++ } END { print c + 0 }' "$T/series")
[ "$maxlag" -lt 30 ] && [ "$neg" -le 2 ]; ok $? "restore lag bounded: at most $maxlag s behind the source's commits ($neg samples before the first commit)"

END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $APID; wait $APID
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
kill -TERM $RPID; wait $RPID
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" >> "$T/restore.log" 2>&1
is "$?" 0 "the final catch-up exits 0"
check "target equals source after the soak" same_data "$P" "$Q"
is "$(psql_at "$Q" -c "select count(*) from pgbench_history")" "$(psql_at "$P" -c "select count(*) from pgbench_history")" \
	"every pgbench transaction applied once (pgbench_history has no key)"
echo "soak: seconds=$SECS samples=$n agent_rss_mb=$(awk '{ printf "%s%s", (NR > 1 ? "," : ""), $2 }' "$T/series") restore_rss_mb=$(awk '{ printf "%s%s", (NR > 1 ? "," : ""), $3 }' "$T/series") max_lag_s=$maxlag" >> "$SUMMARY"
done_testing
