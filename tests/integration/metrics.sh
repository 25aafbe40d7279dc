#!/bin/sh
# Metrics, heartbeats and status: an agent and a --follow restore serve
# Prometheus metrics (scraped with curl) and write textfiles; the restore's
# lag rises while its apply is held up under load and returns to 0; the
# counters move; an idle source still records heartbeats, which the
# standby applies (logship.applied.heartbeat_time advances, an old marker
# table without that column is upgraded); the status commands give JSON
# and exit codes 0 / 1 / 2; ls ends with the restorable window.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is not installed"
command -v jq >/dev/null || skip_all "jq is not installed"
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"
MA=$(free_port); _pseed=3; MR=$(free_port)
[ "$MA" != "$MR" ] || MR=$((MA + 1))
HB=2	# heartbeat interval, seconds

scrape() { curl -sf "http://127.0.0.1:$1/metrics"; }
metric() {	# metric PORT NAME: its value ("" when absent)
	scrape "$1" | awk -v n="$2" '$1 == n { print $2; exit }'
}
until_metric() {	# until_metric PORT NAME AWK-COND: poll up to 60 s
	_i=0
	until [ "$(metric "$1" "$2" | awk "{ print ($3) ? 1 : 0 }")" = 1 ] ||
		[ $_i -gt 600 ]; do sleep 0.1; _i=$((_i + 1)); done
	[ "$(metric "$1" "$2" | awk "{ print ($3) ? 1 : 0 }")" = 1 ]
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 \
    --heartbeat-interval ${HB}s --metrics-addr "$MA" \
    --metrics-file "$T/agent.prom" > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log" || { cat "$T/agent.log"; echo "Bail out! the agent does not stream"; exit 1; }

out=$(scrape "$MA")
like "$out" '^# TYPE logship_agent_transactions_total counter$' "agent: counters typed"
like "$out" '^# HELP logship_agent_slot_lag_bytes ' "agent: gauges with help"
like "$out" '^logship_agent_upload_seconds_bucket\{le="\+Inf"\} [1-9]' "agent: the upload latency histogram counted the base"
like "$out" '^logship_agent_base_tables_done 4$' "agent: base progress, 4 of 4 tables"
until_metric "$MA" logship_agent_slot_active '$1 == 1'; ok $? "agent: the slot is active (read from the source)"

"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" --follow \
    --batch-txns 10 --metrics-addr "$MR" --metrics-file "$T/restore.prom" \
    > "$T/restore.log" 2>&1 &
RPID=$!; track_pid $RPID
until_metric "$MR" logship_restore_caught_up '$1 == 1'; ok $? "restore: caught up after the base"
is "$(metric "$MR" logship_restore_lag_seconds)" 0 "restore: lag 0 s when caught up"

a_txns=$(metric "$MA" logship_agent_transactions_total)
a_segs=$(metric "$MA" logship_agent_segments_total)
r_txns=$(metric "$MR" logship_restore_transactions_total)

# load while the standby's apply is held up by a lock on the target
psql_at "$Q" -c "BEGIN; LOCK TABLE pgbench_accounts; SELECT pg_sleep(6); COMMIT" >/dev/null 2>&1 &
LPID=$!; track_pid $LPID
sleep 0.5
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 postgres >/dev/null 2>&1
max_lag=0; max_segs=0
while kill -0 $LPID 2>/dev/null; do
	l=$(metric "$MR" logship_restore_lag_seconds); s=$(metric "$MR" logship_restore_lag_segments)
	gt "$l" "$max_lag" && max_lag=$l
	gt "$s" "$max_segs" && max_segs=$s
	sleep 0.3
done
diag "restore lag under load: up to $max_lag s, $max_segs segments"
gt "$max_lag" 0; ok $? "restore: lag in seconds rose under load ($max_lag)"
gt "$max_segs" 0; ok $? "restore: lag in segments rose under load ($max_segs)"
until_metric "$MR" logship_restore_lag_seconds '$1 == 0'; ok $? "restore: lag back to 0 s once caught up"
is "$(metric "$MR" logship_restore_lag_bytes)" 0 "restore: lag back to 0 bytes"

gt "$(metric "$MA" logship_agent_transactions_total)" "$a_txns"; ok $? "agent: transactions_total increased"
gt "$(metric "$MA" logship_agent_segments_total)" "$a_segs"; ok $? "agent: segments_total increased"
gt "$(metric "$MA" logship_agent_changes_total)" 0; ok $? "agent: changes_total counted"
gt "$(metric "$MR" logship_restore_transactions_total)" "$r_txns"; ok $? "restore: transactions_total increased"
gt "$(metric "$MR" logship_restore_changes_total)" 0; ok $? "restore: changes_total counted"
gt "$(metric "$MA" logship_agent_durable_lsn)" 0; ok $? "agent: durable LSN as a number"
src_lsn=$(metric "$MA" logship_agent_source_lsn)	# seen before the source's LSN read after
cur=$(psql_at "$P" -c "select pg_current_wal_lsn() - '0/0'")
[ -n "$src_lsn" ] && ! gt "$src_lsn" "$cur" && gt "$src_lsn" 0; ok $? "agent: source LSN $src_lsn within the source's ($cur)"

# textfiles: rewritten every 5 s, whole
sleep 5.5
grep -q '^logship_agent_transactions_total [1-9]' "$T/agent.prom"; ok $? "agent: --metrics-file holds the metrics"
grep -q '^logship_restore_lag_seconds ' "$T/restore.prom"; ok $? "restore: --metrics-file holds the metrics"
ls "$T" | grep -q '\.tmp$'; ok $((!$?)) "no temp file left beside the textfiles"

# heartbeats: the source is idle now
hb0=$(psql_at "$Q" -c "select extract(epoch from heartbeat_time) from logship.applied")
n0=$("$RESTORE" ls --store "$S" | grep -c ' heartbeat$')
t0=$(date +%s)
sleep $((HB * 4))
n1=$("$RESTORE" ls --store "$S" | grep -c ' heartbeat$')
t1=$(date +%s)
diag "heartbeat segments: $n0 then $n1 over $((t1 - t0)) s"
[ "$n1" -ge $((n0 + 2)) ]; ok $? "idle source: heartbeat segments keep coming ($n0 -> $n1)"
[ "$((n1 - n0))" -le $(( (t1 - t0) / HB + 2 )) ]; ok $? "at most one heartbeat per interval"
until_metric "$MR" logship_restore_applied_heartbeat_time_seconds "\$1 > ${hb0:-0} + 0"
hb1=$(psql_at "$Q" -c "select extract(epoch from heartbeat_time) from logship.applied")
[ -n "$hb1" ] && gt "$hb1" "${hb0:-0}"; ok $? "logship.applied.heartbeat_time advances ($hb0 -> $hb1)"
seg=$("$RESTORE" ls --store "$S" | awk '$NF == "heartbeat" { s = $1 } END { print s }')
"$RESTORE" cat --store "$S" "$seg" 2>/dev/null | head -n 1 > "$T/hb.json"
[ "$(jq -r '.heartbeat_time != null and .txns == 0' "$T/hb.json")" = true ]; ok $? "cat shows a heartbeat's header"

# status: caught up
# a heartbeat may land between two polls of the standby: ask until caught up
i=0; while :; do
	out=$("$RESTORE" status --store "$S" --target "$DST" --format json --warn 30s); rc=$?
	[ "$(printf '%s' "$out" | jq -r .caught_up)" = true ] || [ $i -gt 100 ] && break
	sleep 0.2; i=$((i + 1))
done
is "$rc" 0 "restore status: exit 0 when caught up"
is "$(printf '%s' "$out" | jq -r '[.status, .caught_up, .lag_seconds < 30, .marker_from] | join(" ")')" "ok true true target" "restore status: JSON fields"
out=$("$AGENT" status --source "$SRC" --store "$S" --format json --warn 1m); rc=$?
is "$rc" 0 "agent status: exit 0 while streaming"
is "$(printf '%s' "$out" | jq -r '[.status, .agent_running, (.last_segment > 0), (.as_of != null)] | join(" ")')" "ok true true true" "agent status: JSON fields"
out=$("$AGENT" status --source "$SRC" --store "$S"); rc=$?
like "$out" '^logship-agent: ok$' "agent status: a text summary by default"

# the standby stops; the source writes; the lag grows
kill -TERM $RPID; wait $RPID
is "$?" 0 "the standby stops on SIGTERM"
grep -q '^logship_restore_applied_segment [1-9]' "$T/restore.prom"; ok $? "restore: the textfile is written at exit"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 1 -t 50 postgres >/dev/null 2>&1
end=$(psql_at "$P" -c "select pg_current_wal_lsn() - '0/0'")
until_metric "$MA" logship_agent_durable_lsn "\$1 >= $end"; ok $? "the agent stored the new transactions"
sleep 2
out=$("$RESTORE" status --store "$S" --state-dir "$T/state" --format json --warn 1s --crit 1h); rc=$?
is "$rc" 1 "restore status: exit 1 over --warn"
is "$(printf '%s' "$out" | jq -r '[.status, .caught_up, (.lag_segments > 0), (.lag_bytes > 0), (.lag_seconds > 1)] | join(" ")')" "warn false true true true" "restore status: lag in the JSON"
"$RESTORE" status --store "$S" --state-dir "$T/state" --warn 1s --crit 1s >/dev/null; rc=$?
is "$rc" 2 "restore status: exit 2 over --crit"
"$RESTORE" status --store "$T/nowhere" --target "$DST" --format json > "$T/st.json"; rc=$?
is "$rc" 2 "restore status: exit 2 when the store cannot be read"
[ "$(jq -r '.error != null and .status == "crit"' "$T/st.json")" = true ]; ok $? "restore status: the error in the JSON"
"$AGENT" status --source "host=127.0.0.1 port=1 user=postgres dbname=postgres" --store "$S" >/dev/null; rc=$?
is "$rc" 2 "agent status: exit 2 when the source cannot be read"
"$RESTORE" status --store "$S" >/dev/null 2>&1; rc=$?
is "$rc" 2 "restore status: a usage error without --target or --state-dir"

# an old marker table (no heartbeat_time) is read and upgraded
psql_at "$Q" -c "ALTER TABLE logship.applied DROP COLUMN heartbeat_time" >/dev/null
"$RESTORE" status --store "$S" --target "$DST" --format json > "$T/st.json"; rc=$?
is "$rc" 0 "restore status reads an old marker table"
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" --follow \
    --metrics-addr "$MR" > "$T/restore2.log" 2>&1 &
RPID=$!; track_pid $RPID
until_metric "$MR" logship_restore_caught_up '$1 == 1'; ok $? "restore: caught up again"
wait_row "$Q" postgres "select count(*) from logship.applied where heartbeat_time > now() - interval '1 minute'" $RPID
is "$(psql_at "$Q" -c "select count(*) from logship.applied where heartbeat_time is not null")" 1 "the old marker table got heartbeat_time back"
table_sums "$P" > "$T/a"; table_sums "$Q" > "$T/b"
check "target equals source" diff "$T/a" "$T/b"

# ls: the restorable window
out=$("$RESTORE" ls --store "$S")
like "$(printf '%s\n' "$out" | tail -n 2)" '^restorable: generation [0-9a-f]{16} from [0-9A-F]+/[0-9A-F]+ \(.*, earliest base\) to [0-9A-F]+/[0-9A-F]+ \(.*, latest transaction\)$' "ls ends with the restorable window"
like "$(printf '%s\n' "$out" | tail -n 1)" 'complete as of .* \(heartbeat\)$' "ls says the store is complete as of the last heartbeat"

kill -TERM $RPID; wait $RPID
kill -TERM $APID; wait $APID
is "$?" 0 "the agent stops on SIGTERM"
out=$("$AGENT" status --source "$SRC" --store "$S" --format json)
is "$(printf '%s' "$out" | jq -r .agent_running)" false "agent status: no agent running after it stopped"
# the source writes while no agent runs: the store falls behind
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 1 -t 20 postgres >/dev/null 2>&1
sleep 2
out=$("$AGENT" status --source "$SRC" --store "$S" --format json --warn 1s --crit 1h); rc=$?
is "$rc" 1 "agent status: exit 1 over --warn while the store falls behind"
is "$(printf '%s' "$out" | jq -r '[.status, (.slot_lag_bytes > 0), (.lag_seconds > 1)] | join(" ")')" "warn true true" "agent status: its lag in the JSON"
"$AGENT" status --source "$SRC" --store "$S" --warn 1s --crit 1s >/dev/null; rc=$?
is "$rc" 2 "agent status: exit 2 over --crit"
grep -q '^logship_agent_segments_total [1-9]' "$T/agent.prom"; ok $? "agent: the textfile is written at exit"
done_testing
