#!/bin/sh
# logship-agent against a real PostgreSQL 15 source:
#  - refuses FOR ALL TABLES while a table has no replica identity
#  - a pgbench workload while the agent runs, then --endpos: every source
#    transaction is in the store exactly once, in commit order
#  - kill -9 at random moments during a workload, restart, repeat: no gap,
#    no duplicate; sampled during the run, the slot never confirms a
#    transaction the store does not hold yet
#  - SIGTERM stores the open segment and exits 0
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"
PGBENCH="$PG_BINDIR/pgbench"
GEN=0000000000000001

"$PGBENCH" -h 127.0.0.1 -p "$P" -U postgres -i -s 2 -q postgres >/dev/null 2>&1
ok $? "pgbench tables created"

agent() {	# agent ARGS...: run in the foreground, log to $T/agent.log
	"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 "$@" >>"$T/agent.log" 2>&1
}
agent_bg() {	# agent_bg ARGS...: start in the background; its pid in APID
	"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 "$@" >>"$T/agent.log" 2>&1 &
	APID=$!
	track_pid $APID
}

# pgbench_history has no primary key: FOR ALL TABLES must be refused
out=$("$AGENT" --source "$SRC" --store "$S" --init --endpos 0/1 2>&1); rc=$?
is "$rc" 1 "agent refuses FOR ALL TABLES with a table lacking replica identity"
like "$out" "pgbench_history.*REPLICA IDENTITY FULL" "and names the table and the fix"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" "0" "no slot was created"
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null

lsn_now() { psql_at "$P" -c "select pg_current_wal_lsn()"; }

# 1. workload while the agent streams, then --endpos
agent_bg --jobs 2
i=0; while [ ! -f "$S/$GEN/base/manifest" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
test -f "$S/$GEN/base/manifest"; ok $? "base snapshot written"
"$PGBENCH" -h 127.0.0.1 -p "$P" -U postgres -n -c 4 -T 4 postgres > "$T/bench1.out" 2>&1
ok $? "pgbench workload ran"
kill -TERM $APID; wait $APID; rc=$?
is "$rc" 0 "SIGTERM: agent exits 0"
END=$(lsn_now)
agent --endpos "$END"; rc=$?
is "$rc" 0 "--endpos $END: agent exits 0 once everything up to it is stored"
[ "$rc" -eq 0 ] || tail -n 5 "$T/agent.log" | sed 's/^/# /'

"$RESTORE" cat --store "$S" > "$T/all.json" 2>"$T/cat.err"
ok $? "cat decodes every segment"
src_hist=$(psql_at "$P" -c "select count(*) from pgbench_history")
st_hist=$(jq -r 'select(.type=="insert" and .relation=="public.pgbench_history") | 1' "$T/all.json" | wc -l | tr -d ' ')
is "$st_hist" "$src_hist" "every pgbench transaction's history insert is stored exactly once"
src_sum=$(psql_at "$P" -c "select sum(delta) from pgbench_history")
st_sum=$(jq -r 'select(.type=="insert" and .relation=="public.pgbench_history") | .new.delta' "$T/all.json" | awk '{s+=$1} END {printf "%d", s}')
is "$st_sum" "$src_sum" "and the stored values add up to the source's"
dups=$(jq -r 'select(.type=="begin") | .xid' "$T/all.json" | sort | uniq -d | wc -l | tr -d ' ')
is "$dups" "0" "no transaction appears twice"

# commit LSNs strictly increase across the whole store
order=$(jq -r 'select(.type=="begin") | .commit_lsn' "$T/all.json" | awk "$lsn_int_awk"'
	{ v=lsn($1); if (NR>1 && v<=prev) bad++; prev=v } END { print bad+0 }')
is "$order" "0" "transactions are stored in commit order"
check "verify passes" "$RESTORE" verify --store "$S"

# 2. kill -9 at random moments during a workload
"$PGBENCH" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 12 -R 150 postgres > "$T/bench2.out" 2>&1 &
BPID=$!; track_pid $BPID
( while kill -0 $BPID 2>/dev/null; do
	c=$(psql_at "$P" -c "select confirmed_flush_lsn from pg_replication_slots where slot_name='logship'")
	last=$(ls "$S/$GEN/seg" | grep -v '^\.' | tail -n 1)
	echo "$c $last"
	sleep 0.05
  done > "$T/samples" ) &
SPID=$!; track_pid $SPID
kills=0
while kill -0 $BPID 2>/dev/null; do
	agent_bg
	A=$APID
	sleep "0.$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))"
	kill -9 $A 2>/dev/null && kills=$((kills+1))
	wait $A 2>/dev/null
done
wait $BPID
wait $SPID
diag "killed the agent $kills times"
[ "$kills" -ge 5 ]; ok $? "the agent was killed at least 5 times ($kills)"
END=$(lsn_now)
agent --endpos "$END"; rc=$?
is "$rc" 0 "after the kills, --endpos run completes"
"$RESTORE" cat --store "$S" > "$T/all2.json" 2>/dev/null
src_hist=$(psql_at "$P" -c "select count(*) from pgbench_history")
st_hist=$(jq -r 'select(.type=="insert" and .relation=="public.pgbench_history") | 1' "$T/all2.json" | wc -l | tr -d ' ')
is "$st_hist" "$src_hist" "kill -9 loop: no gap (every history row stored)"
dups=$(jq -r 'select(.type=="begin") | .xid' "$T/all2.json" | sort | uniq -d | wc -l | tr -d ' ')
is "$dups" "0" "kill -9 loop: no duplicate transaction"
order=$(jq -r 'select(.type=="begin") | .commit_lsn' "$T/all2.json" | awk "$lsn_int_awk"'
	{ v=lsn($1); if (NR>1 && v<=prev) bad++; prev=v } END { print bad+0 }')
is "$order" "0" "kill -9 loop: commit order holds"
check "kill -9 loop: verify passes" "$RESTORE" verify --store "$S"

# Confirmation never ran ahead of the store: for each sample (confirmed
# LSN, then the last stored segment), every transaction ending at or
# before the confirmed LSN lives in a segment that was already stored.
jq -r 'if .type=="header" then "H \(.segno)" elif .type=="commit" then "C \(.end_lsn)" else empty end' "$T/all2.json" > "$T/txnseg"
ntxn=$(grep -c '^C' "$T/txnseg")
[ "$ntxn" -gt 100 ]; ok $? "the store holds the workload's transactions ($ntxn)"
nsamples=$(grep -c . "$T/samples")
bad=$(confirmed_early "$T/txnseg" "$T/samples")
diag "$nsamples confirmation samples"
[ "$nsamples" -ge 20 ]; ok $? "enough samples of confirmed_flush_lsn ($nsamples)"
is "$bad" "0" "the slot never confirmed a transaction before its segment was stored"

done_testing
