#!/bin/sh
# logship-agent -> faultproxy -> Swift (S3 API) during a pgbench workload,
# the proxy answering 500/503, resetting and stalling some connections:
#  - the agent keeps running through the faults and, with --endpos,
#    stores everything
#  - nothing lost, nothing duplicated, commit order kept, verify passes
#    (read through the faults too)
#  - sampled during the run, the slot never confirms a transaction whose
#    segment is not stored yet
# Needs tests/integration/lib-swift.sh (swift_start, swift_mb), Swift and
# the s3 backend; skips without them.
. "$(dirname "$0")/lib.sh"

D=$(dirname "$0")
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
[ -f "$D/lib-swift.sh" ] || skip_all "tests/integration/lib-swift.sh (the Swift test server) is missing"
"$RESTORE" ls --store s3://x/y 2>&1 | grep -q "unknown URL scheme" &&
	skip_all "this logship-restore has no s3 backend (s3:// is an unknown URL scheme)"
[ -x "$FAULTPROXY" ] || skip_all "tests/tools/faultproxy is not built"
. "$D/lib-swift.sh"
for f in swift_start swift_mb swift_skip_unless_installed; do
	command -v "$f" >/dev/null 2>&1 || skip_all "lib-swift.sh does not define $f"
done
swift_skip_unless_installed
swift_start || { echo "Bail out! Swift did not start"; exit 1; }
swift_mb faults >/dev/null || { echo "Bail out! cannot create the bucket"; exit 1; }

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
PGBENCH="$PG_BINDIR/pgbench"
GEN=0000000000000001
S=s3://faults/store
REGION=us-east-1
DIRECT="--s3-endpoint $S3_ENDPOINT --s3-region $REGION --s3-uri-style path"
UPSTREAM=${S3_ENDPOINT#http://}; UPSTREAM=${UPSTREAM%%/*}

"$FAULTPROXY" --upstream "$UPSTREAM" --seed 7 --p500 0.1 --p503 0.1 \
	--preset 0.05 --pstall 0.02 --stall-seconds 2 > "$T/proxy.port" 2> "$T/proxy.log" &
track_pid $!
i=0; until [ -s "$T/proxy.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
FAULTY="--s3-endpoint http://127.0.0.1:$(head -n 1 "$T/proxy.port") --s3-region $REGION --s3-uri-style path"

"$PGBENCH" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
ok $? "pgbench tables created"

lsn_now() { psql_at "$P" -c "select pg_current_wal_lsn()"; }
# last_seg: the highest stored segment number (hex), straight from Swift
last_seg() {
	# shellcheck disable=SC2086
	"$RESTORE" ls --store "$S" $DIRECT 2>/dev/null |
		awk 'length($1) == 16 && $1 ~ /^[0-9a-f]+$/ { s = $1 } END { print s }'
}

# shellcheck disable=SC2086
"$AGENT" --source "$SRC" --store "$S" --init $FAULTY --flush-interval 0.2 >> "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the base snapshot went through the faults"

"$PGBENCH" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 10 -R 100 postgres > "$T/bench.out" 2>&1 &
BPID=$!; track_pid $BPID
# sample during the workload, and after it until there are 10 samples (a
# loaded machine runs the sampler slowly; the agent still streams)
( n=0; k=0; while kill -0 $BPID 2>/dev/null || { [ $n -lt 10 ] && [ $k -lt 100 ]; }; do
	c=$(psql_at "$P" -c "select confirmed_flush_lsn from pg_replication_slots where slot_name='logship'")
	g=$(last_seg)
	echo "$c $g"
	[ -n "$c" ] && [ -n "$g" ] && n=$((n + 1))
	k=$((k + 1))
	sleep 0.2
  done > "$T/samples" ) &
SPID=$!; track_pid $SPID
wait $BPID; ok $? "pgbench workload ran"
wait $SPID
kill -0 $APID 2>/dev/null; ok $? "the agent kept running through the faults"
kill -TERM $APID; wait $APID
is "$?" 0 "SIGTERM: the agent exits 0"
END=$(lsn_now)
# shellcheck disable=SC2086
"$AGENT" --source "$SRC" --store "$S" --init $FAULTY --endpos "$END" >> "$T/agent.log" 2>&1
is "$?" 0 "--endpos $END through the faults: everything stored"

faults=$(grep -c "action=[0-9rs]" "$T/proxy.log")
diag "$faults of $(grep -c "action=" "$T/proxy.log") connections got a fault"
[ "$faults" -ge 5 ]; ok $? "the proxy injected faults ($faults)"

# shellcheck disable=SC2086
"$RESTORE" cat --store "$S" $DIRECT > "$T/all.json" 2>"$T/cat.err"
ok $? "cat decodes every segment"
src_hist=$(psql_at "$P" -c "select count(*) from pgbench_history")
st_hist=$(jq -r 'select(.type=="insert" and .relation=="public.pgbench_history") | 1' "$T/all.json" | wc -l | tr -d ' ')
is "$st_hist" "$src_hist" "nothing lost: every history row is stored"
dups=$(jq -r 'select(.type=="begin") | .xid' "$T/all.json" | sort | uniq -d | wc -l | tr -d ' ')
is "$dups" "0" "nothing duplicated"
order=$(jq -r 'select(.type=="begin") | .commit_lsn' "$T/all.json" | awk "$lsn_int_awk"'
	{ v=lsn($1); if (NR>1 && v<=prev) bad++; prev=v } END { print bad+0 }')
is "$order" "0" "commit order kept"
# shellcheck disable=SC2086
check "verify passes, read through the faults" "$RESTORE" verify --store "$S" $FAULTY

# the confirmation rule, as in agent.sh
jq -r 'if .type=="header" then "H \(.segno)" elif .type=="commit" then "C \(.end_lsn)" else empty end' "$T/all.json" > "$T/txnseg"
nsamples=$(awk 'NF == 2' "$T/samples" | wc -l | tr -d ' ')
[ "$nsamples" -ge 10 ]; ok $? "enough samples of confirmed_flush_lsn ($nsamples)"
bad=$(confirmed_early "$T/txnseg" "$T/samples")
is "$bad" "0" "the slot never confirmed a transaction before its segment was stored"

done_testing
