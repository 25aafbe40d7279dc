#!/bin/sh
# logship-restore end to end on real PostgreSQL 15 clusters:
#  - a pgbench workload and a table of awkward types through agent and
#    restore: every table of the target equals the source, sequences not
#    behind
#  - --until-lsn and --until-time stop at exactly the right transaction
#  - --follow keeps up with a live workload, survives the target going
#    away and coming back, and ends equal once the agent reaches --endpos
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
for db in whole until_lsn until_time follow; do psql_at "$Q" -c "create database $db" >/dev/null; done

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" >/dev/null <<'SQL'
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TABLE types (id serial PRIMARY KEY, t text, b bytea, j jsonb, a int[],
    n numeric, ts timestamptz, big text, other int);
ALTER TABLE types ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE nokey (x int, y text, js json);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent (id));
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE bigt (id int PRIMARY KEY, pad text);
INSERT INTO types (t, b, j, a, n, ts, big, other) VALUES
    ('', '\x00ff', '{"k": [1, "two"]}', '{1,2,NULL}', 12345.678901234567890,
     '2024-02-29 23:59:59.123456+05:30', repeat(md5('x'), 4000), 1),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2);
SQL

"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done

psql_at "$P" >/dev/null <<'SQL'
INSERT INTO types (t, b, j, a, n, ts, big, other) VALUES
    ('after', '\xdeadbeef', '[]', '{}', -0.5, 'infinity', repeat(md5('y'), 5000), 3),
    ('', '', 'null', '{{1,2},{3,4}}', 'NaN', '1999-12-31 23:59:59+00', '', 4);
UPDATE types SET other = other + 10;             -- big: unchanged TOAST
UPDATE types SET t = NULL WHERE t = '';           -- empty string -> NULL
UPDATE types SET t = '' WHERE id = 2;             -- NULL -> empty string
INSERT INTO nokey VALUES (1, 'a', '{"x":1}'), (1, 'a', '{"x":1}'), (2, 'b', NULL);
UPDATE nokey SET y = 'c' WHERE x = 1;             -- two identical rows, no key
DELETE FROM nokey WHERE x = 2;
INSERT INTO parent SELECT g FROM generate_series(1, 5) g;
INSERT INTO child SELECT g, g FROM generate_series(1, 5) g;
TRUNCATE parent CASCADE;
INSERT INTO parent VALUES (7);
INSERT INTO child VALUES (7, 7);
INSERT INTO ident (v) SELECT 'v' || g FROM generate_series(1, 20) g;
SELECT nextval('types_id_seq');                    -- a sequence ahead of its table
SQL
psql_at "$P" -c "INSERT INTO bigt SELECT g, md5(g::text) FROM generate_series(1, 1000000) g" >/dev/null
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 postgres >/dev/null 2>&1
ok $? "source workload ran"
kill -0 $APID; ok $? "the agent ran through the workload"
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END" || tail -n 20 "$T/agent.log" | sed 's/^/# /'

t0=$(date +%s)
"$RESTORE" --store "$S" --target "$(dst whole)" --state-dir "$T/st-whole" > "$T/restore.log" 2>&1
is "$?" 0 "restore exits 0"
diag "restore took $(( $(date +%s) - t0 )) s; $(grep -o 'summary:.*' "$T/restore.log")"
like "$(cat "$T/restore.log")" "summary: segments=[0-9]+ transactions=[0-9]+ rows=[0-9]+ folded=[0-9]+ parallel=[0-9]+ early=[0-9]+ seconds=" "a final summary line"
table_sums "$P" > "$T/a"; table_sums_db "$Q" whole > "$T/b"
check "every table of the target equals the source" sh -c "diff '$T/a' '$T/b'"
check "sequences are not behind" sequences_not_behind_db "$P" "$Q" whole
is "$(psql_at_db "$Q" whole -c "select count(*) from nokey")" "2" "REPLICA IDENTITY FULL without a key: duplicates kept, each updated once"
is "$(psql_at_db "$Q" whole -c "select length(big) from types where id = 1")" "128000" "unchanged TOAST value left untouched by UPDATE"
is "$(psql_at_db "$Q" whole -c "select count(*) from types where t = ''")" "1" "empty string stays an empty string"
is "$(psql_at_db "$Q" whole -c "select count(*) from types where t is null")" "2" "and NULL stays NULL"
is "$(psql_at_db "$Q" whole -c "select count(*) from bigt")" "1000000" "the 1,000,000-row transaction arrived"
is "$(psql_at_db "$Q" whole -c "select string_agg(id::text, ',') from child")" "7" "TRUNCATE ... CASCADE replayed"
is "$(psql_at_db "$Q" whole -c "select remote_lsn from pg_replication_origin_status s join pg_replication_origin o on o.roident = s.local_id where o.roname = 'logship_' || (select oid from pg_database where datname = 'whole') || '_0000000000000001'")" \
   "$(psql_at_db "$Q" whole -c "select end_lsn from logship.applied")" "the replication origin records the source position"

# --until-lsn / --until-time: pick a transaction in the middle of the store
"$RESTORE" cat --store "$S" > "$T/all.json"
jq -r 'select(.type=="begin") | "\(.commit_lsn) \(.end_lsn) \(.commit_time)"' "$T/all.json" > "$T/txns"
n=$(wc -l < "$T/txns")
mid=$(sed -n "$((n / 2))p" "$T/txns")
MID_LSN=${mid%% *}; rest=${mid#* }; MID_END=${rest%% *}; MID_TIME=${rest#* }
hist_upto() {	# history rows inserted by transactions up to and including line $1
	jq -r 'select(.type=="begin" or (.type=="insert" and .relation=="public.pgbench_history")) | .type' "$T/all.json" |
	awk -v stop="$1" '$1=="begin" { b++ } b <= stop && $1=="insert" { c++ } END { print c+0 }'
}
want=$(hist_upto $((n / 2)))
"$RESTORE" --store "$S" --target "$(dst until_lsn)" --state-dir "$T/st-lsn" --until-lsn "$MID_LSN" > "$T/r2.log" 2>&1
is "$?" 0 "--until-lsn exits 0"
is "$(psql_at_db "$Q" until_lsn -c "select end_lsn from logship.applied")" "$MID_END" "--until-lsn $MID_LSN stops after exactly that transaction"
is "$(psql_at_db "$Q" until_lsn -c "select count(*) from pgbench_history")" "$want" "with exactly the rows up to it"
"$RESTORE" --store "$S" --target "$(dst until_time)" --state-dir "$T/st-time" --until-time "$MID_TIME" > "$T/r3.log" 2>&1
is "$?" 0 "--until-time exits 0"
is "$(psql_at_db "$Q" until_time -c "select end_lsn from logship.applied")" "$MID_END" "--until-time $MID_TIME stops after exactly that transaction"

# --follow: a standby while the agent streams a live workload
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 >> "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
"$RESTORE" --store "$S" --target "$(dst follow)" --state-dir "$T/st-follow" --follow --batch-txns 50 > "$T/follow.log" 2>&1 &
RPID=$!; track_pid $RPID
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 -R 200 postgres >/dev/null 2>&1
# the target goes away for a moment in the middle of the run
pg_as "$PG_BINDIR/pg_ctl" -D "$dst_DIR/data" -m fast -w stop >/dev/null
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 2 -R 200 postgres >/dev/null 2>&1
pg_as "$PG_BINDIR/pg_ctl" -D "$dst_DIR/data" -l "$dst_DIR/log" -w start >/dev/null
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 2 -R 200 postgres >/dev/null 2>&1
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
last_end=$("$RESTORE" cat --store "$S" | jq -r 'select(.type=="commit") | .end_lsn' | tail -n 1)
i=0; while [ "$(psql_at_db "$Q" follow -c "select end_lsn from logship.applied" 2>/dev/null)" != "$last_end" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
kill -0 $RPID 2>/dev/null; ok $? "--follow is still running after the target restarted"
like "$(cat "$T/follow.log")" "reconnecting" "it reconnected to the target"
is "$(psql_at_db "$Q" follow -c "select end_lsn from logship.applied")" "$last_end" "--follow caught up with the store"
table_sums "$P" > "$T/a"; table_sums_db "$Q" follow > "$T/b"
check "--follow target equals the source" sh -c "diff '$T/a' '$T/b'"
kill -TERM $RPID; wait $RPID
is "$?" 0 "--follow exits 0 on SIGTERM"

done_testing
