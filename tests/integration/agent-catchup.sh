#!/bin/sh
# The agent catching up on a backlog (agent/stream.c, wait_input): after
# waits that each found data at once, it asks the kernel to wake it only
# once 32 kB have arrived (SO_RCVLOWAT), for at most 10 ms, and goes back
# to waking for every byte at the first wait that times out.  A backlog of
# small pgbench transactions is captured in batches (the counter
# logship_agent_batched_waits_total moves) and stored whole; then a live
# stream after the catch-up still stores one small transaction at once; a
# restore of the store equals the source, by fingerprint.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"
lsn() { psql_at "$P" -c "select pg_current_wal_lsn()"; }

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$(lsn)" > "$T/a0.log" 2>&1
ok $? "the base is stored and the slot kept"

# a backlog while no agent runs: 8,000 small transactions
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 4 -j 2 -t 2000 postgres > "$T/pgbench.out" 2>&1
ok $? "a backlog of 8,000 pgbench transactions"
end=$(lsn)
"$AGENT" --source "$SRC" --store "$S" --endpos "$end" --metrics-file "$T/a1.prom" > "$T/a1.log" 2>&1
ok $? "the agent captures the backlog (--endpos)"
waits=$(awk '$1 == "logship_agent_batched_waits_total" { print $2 }' "$T/a1.prom")
diag "batched waits: $waits"
awk -v w="${waits:-0}" 'BEGIN { exit !(w + 0 > 0) }'
ok $? "catching up, it waited for batches ($waits times)"

# live after the catch-up: one transaction is stored within a flush or two
"$AGENT" --source "$SRC" --store "$S" --flush-interval 0.2 --metrics-file "$T/a2.prom" > "$T/a2.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/a2.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/a2.log"; ok $? "the agent streams again"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -t 500 postgres >/dev/null 2>&1
sleep 1
psql_at "$P" -c "update pgbench_branches set filler = 'live' where bid = 1" >/dev/null
want=$(lsn)
t0=$(date +%s)
confirmed() { psql_at "$P" -c "select coalesce((select confirmed_flush_lsn >= '$want' from pg_replication_slots where slot_name = 'logship'), false)"; }
until [ "$(confirmed)" = t ] || [ $(( $(date +%s) - t0 )) -gt 20 ]; do sleep 0.1; done
t1=$(date +%s)
[ "$(confirmed)" = t ]
ok $? "a live transaction after the catch-up is stored and confirmed ($((t1 - t0)) s)"
kill -TERM $A; wait $A
ok $? "the agent stops on SIGTERM"
grep -E ' (error|warning) ' "$T/a1.log" "$T/a2.log" | head -n 3 | sed 's/^/# /'
! grep -qE ' (error|warning) ' "$T/a1.log" "$T/a2.log"; ok $? "no error or warning in the agent's logs"

"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" > "$T/r.log" 2>&1
ok $? "the restore exits 0"
fingerprint "$P" postgres > "$T/fp.src"
fingerprint "$Q" postgres > "$T/fp.dst"
cmp -s "$T/fp.src" "$T/fp.dst"; ok $? "the target equals the source"
cmp -s "$T/fp.src" "$T/fp.dst" || diff "$T/fp.src" "$T/fp.dst" | head -n 10 | sed 's/^/# /'
is "$(psql_at "$Q" -c "select count(*) from pgbench_history")" 9000 "every pgbench transaction arrived once (9,000 history rows)"

done_testing
