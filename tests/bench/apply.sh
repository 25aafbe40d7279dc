#!/bin/sh
# Benchmark: logship-restore's catch-up apply against PostgreSQL's own
# logical replication (a subscription) applying the same changes, in the
# same run on the same machine.  Prints both times and their ratio.
#
#	top_builddir=build tests/bench/apply.sh [SECONDS] [CLIENTS]
#
# Both targets start from the same base (the subscription's initial copy,
# the restore's base snapshot); the subscription is disabled during the
# workload and the restore has not seen it either; then each catches up
# alone and is timed.
. "$(dirname "$0")/../integration/lib.sh"
SECS=${1:-10}; CLIENTS=${2:-4}

pg_start src; pg_start sub; pg_start dst
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres"
S="$T/store"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" \
    -c "CREATE TABLE bulk (id int PRIMARY KEY, pad text)" >/dev/null
"$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$P" -U postgres -s postgres | psql_at "$sub_PORT" >/dev/null 2>&1
psql_at "$P" -c "CREATE PUBLICATION bench FOR ALL TABLES" >/dev/null
psql_at "$sub_PORT" -c "CREATE SUBSCRIPTION bench CONNECTION 'host=127.0.0.1 port=$P user=postgres dbname=postgres' PUBLICATION bench" >/dev/null
until [ "$(psql_at "$sub_PORT" -c "select count(*) from pg_subscription_rel where srsubstate <> 'r'")" = 0 ]; do sleep 0.2; done
psql_at "$sub_PORT" -c "ALTER SUBSCRIPTION bench DISABLE" >/dev/null

"$AGENT" --source "$SRC" --store "$S" --init --publication logship > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
until grep -q "streaming generation" "$T/agent.log"; do sleep 0.2; done
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" > "$T/r0.log" 2>&1
echo "base restored; workload: pgbench $CLIENTS clients for $SECS s, then a 200,000-row insert"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c "$CLIENTS" -T "$SECS" postgres 2>/dev/null | grep "actually processed"
psql_at "$P" -c "INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 200000) g" >/dev/null
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --init --publication logship --endpos "$END" >> "$T/agent.log" 2>&1

now() { date +%s.%N; }
t0=$(now)
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" > "$T/r1.log" 2>&1
t1=$(now)
restore_s=$(echo "$t1 - $t0" | bc)

t0=$(now)
psql_at "$sub_PORT" -c "ALTER SUBSCRIPTION bench ENABLE" >/dev/null
until [ "$(psql_at "$P" -c "select confirmed_flush_lsn >= '$END' from pg_replication_slots where slot_name = 'bench'")" = t ]; do sleep 0.05; done
t1=$(now)
sub_s=$(echo "$t1 - $t0" | bc)

table_sums "$P" > "$T/a"; table_sums "$sub_PORT" > "$T/b"; table_sums "$dst_PORT" > "$T/c"
diff -q "$T/a" "$T/b" >/dev/null && diff -q "$T/a" "$T/c" >/dev/null && echo "both targets equal the source" || echo "TARGETS DIFFER"
grep -o "summary:.*" "$T/r1.log"
printf 'logship-restore catch-up: %.2f s\nsubscription catch-up:    %.2f s\nratio restore/subscription: %.2f\n' \
    "$restore_s" "$sub_s" "$(echo "$restore_s / $sub_s" | bc -l)"
