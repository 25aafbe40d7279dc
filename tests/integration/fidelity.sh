#!/bin/sh
# Fidelity: the target equals the source, by fingerprint of every table,
# partition, materialized view, view, large object and the schema itself.
#  - a base over the table zoo (sql/zoo-*.sql): every built-in type family,
#    column-order traps (inheritance children whose parent gained a column,
#    dropped and re-added columns), zero-column tables, partitions,
#    generated and identity columns, quoted and unicode names, composite,
#    domain, enum, range and array keys, materialized views, large objects
#  - then a stream over the same zoo: inserts, updates (key changes
#    included) and deletes of every table
#  - the restore into an empty database and into one made from
#    pg_dump --schema-only (the target's physical column order differs)
#  - logship's own publication and schema are not restored as user objects
#  - a column dropped or added on the source stops the restore before the
#    first change that needs it, naming segment, LSN, table and the fix;
#    everything before it is committed
. "$(dirname "$0")/lib.sh"
SQL="$top_srcdir/tests/integration/sql"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"

psql_at "$P" -f "$SQL/zoo-schema.sql" >/dev/null 2>"$T/zoo.err"
ok $? "zoo schema created" || sed 's/^/# /' "$T/zoo.err"
psql_at "$P" -v r=1 -f "$SQL/zoo-data.sql" >/dev/null 2>"$T/zoo.err"
ok $? "zoo rows before the base" || sed 's/^/# /' "$T/zoo.err"
psql_at "$P" -c "REFRESH MATERIALIZED VIEW mv_counts" -c "REFRESH MATERIALIZED VIEW mv_total" \
	-c "CREATE MATERIALIZED VIEW mv_empty AS SELECT 1 AS one WITH NO DATA" >/dev/null

# a key the source does not send (a generated column) is refused up front
psql_at "$P" -c "CREATE TABLE gen_key (x int, y int GENERATED ALWAYS AS (x * 2) STORED PRIMARY KEY)" >/dev/null
out=$("$AGENT" --source "$SRC" --store "$S" --init 2>&1); rc=$?
is "$rc" 1 "FOR ALL TABLES with a generated column in a replica identity is refused"
like "$out" "generated column in their replica identity.*public.gen_key.*REPLICA IDENTITY FULL" "naming the table and the fix"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" 0 "and no slot is made"
psql_at "$P" -c "ALTER TABLE gen_key REPLICA IDENTITY FULL" -c "INSERT INTO gen_key VALUES (1), (2)" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent took the base and streams"
like "$(cat "$T/agent.log")" "large object.*not streamed" "the agent says large objects are carried by the base only"

psql_at "$P" -v r=2 -f "$SQL/zoo-data.sql" >/dev/null 2>"$T/zoo.err"
ok $? "zoo rows while streaming" || sed 's/^/# /' "$T/zoo.err"
psql_at "$P" -c "UPDATE gen_key SET x = 10 WHERE x = 1" -c "DELETE FROM gen_key WHERE x = 2" >/dev/null
psql_at "$P" -f "$SQL/zoo-changes.sql" >/dev/null 2>"$T/zoo.err"
ok $? "zoo updates and deletes while streaming" || sed 's/^/# /' "$T/zoo.err"
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END" || tail -n 5 "$T/agent.log" | sed 's/^/# /'

# large objects made after the base are not carried (said loudly): drop
# the streamed round's from the comparison by restoring against the base's
lobase=$(psql_at "$P" -c "select count(*) from pg_largeobject_metadata")
is "$lobase" 2 "the source has the base's two large objects"

like "$("$RESTORE" ls --store "$S")" "base: consistent at .*, 2 large objects" "ls counts the base's large objects"
fingerprint "$P" postgres > "$T/fp.src"

psql_at "$Q" -c "create database whole" >/dev/null
"$RESTORE" --store "$S" --target "$(dst whole)" --state-dir "$T/st-whole" > "$T/restore.log" 2>&1
is "$?" 0 "restore into an empty database exits 0" || tail -n 5 "$T/restore.log" | sed 's/^/# /'
fingerprint "$Q" whole > "$T/fp.whole"
check "the target equals the source (every table, view, matview, large object, the schema)" \
	diff "$T/fp.src" "$T/fp.whole"
is "$(psql_at_db "$Q" whole -c "select relispopulated from pg_class where relname = 'mv_total'")" "t" \
	"a materialized view over another is populated"
is "$(psql_at_db "$Q" whole -c "select relispopulated from pg_class where relname = 'mv_empty'")" "f" \
	"one created WITH NO DATA stays unpopulated"
is "$(psql_at_db "$Q" whole -c "select count(*) from pg_publication")" "0" \
	"the agent's own publication is not restored"
is "$(psql_at_db "$Q" whole -c "select attname from pg_attribute where attrelid = 'c'::regclass and attnum > 0 order by attnum" | tr '\n' ' ')" \
	"a b d c " "the child's columns are in the target's own order (d before c)"
is "$(psql_at_db "$Q" whole -c "select c || ',' || d from c where a = 102")" "33,44" \
	"and each value is in its own column"

# a target made beforehand from pg_dump --schema-only
psql_at "$Q" -c "create database given" >/dev/null
"$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$P" -U postgres -s --no-publications postgres |
	psql_at_db "$Q" given >/dev/null 2>&1
"$RESTORE" --store "$S" --target "$(dst given)" --state-dir "$T/st-given" > "$T/restore-given.log" 2>&1
is "$?" 0 "restore into a schema from pg_dump -s exits 0" || tail -n 5 "$T/restore-given.log" | sed 's/^/# /'
fingerprint "$Q" given | grep -v '^[rmv][pu] .*mv_' > "$T/fp.given"
grep -v '^[rmv][pu] .*mv_' "$T/fp.src" > "$T/fp.src-nomv"
check "and equals the source too" diff "$T/fp.src-nomv" "$T/fp.given"

# a base-load worker that cannot start is an error, not an empty success
psql_at "$Q" -c "create database nothreads" >/dev/null
out=$(LOGSHIP_TEST_FAIL_WORKER_START=1 "$RESTORE" --store "$S" --target "$(dst nothreads)" \
	--state-dir "$T/st-nothreads" 2>&1); rc=$?
is "$rc" 1 "no base-load worker started: the restore fails"
like "$out" "cannot start worker 1" "saying why"
is "$(psql_at_db "$Q" nothreads -c "select phase from logship.applied")" "1" "and the data phase is not marked done"
"$RESTORE" --store "$S" --target "$(dst nothreads)" --state-dir "$T/st-nothreads" >/dev/null 2>&1
is "$?" 0 "the rerun loads the base"
is "$(psql_at_db "$Q" nothreads -c "select count(*) from parted")" "$(psql_at "$P" -c "select count(*) from parted")" \
	"all of it"

# an error from the target names the table, the segment and the source transaction
psql_at_db "$Q" whole -c "ALTER TABLE k_ident ADD CONSTRAINT no_boom CHECK (v <> 'boom')" >/dev/null
psql_at "$P" -c "INSERT INTO k_ident (v) VALUES ('boom')" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
out=$("$RESTORE" --store "$S" --target "$(dst whole)" --state-dir "$T/st-whole" 2>&1); rc=$?
is "$rc" 1 "a change the target refuses stops the restore"
like "$out" "no_boom.*\(table public.k_ident, segment [0-9a-f]{16}, source transaction [0-9]+ committed at [0-9A-F]+/[0-9A-F]+\)" \
	"naming the table, the segment and the source transaction"
psql_at_db "$Q" whole -c "ALTER TABLE k_ident DROP CONSTRAINT no_boom" >/dev/null
"$RESTORE" --store "$S" --target "$(dst whole)" --state-dir "$T/st-whole" >/dev/null 2>&1
is "$?" 0 "and goes on once the target accepts it"

# a source table changed by DDL: the restore stops before the first change
# that needs the new definition, with everything before it committed
psql_at "$Q" -c "create database ddl" >/dev/null
"$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" > /dev/null 2>&1
ok $? "a standby restored"
"$AGENT" --source "$SRC" --store "$S" --flush-interval 0.2 > "$T/agent2.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent2.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
psql_at "$P" >/dev/null <<'SQL'
INSERT INTO k_ident (v) VALUES ('before 1');
BEGIN; INSERT INTO k_ident (v) VALUES ('before 2'); INSERT INTO readd VALUES (901, 'b', 1, 2); COMMIT;
ALTER TABLE readd DROP COLUMN z;
BEGIN; INSERT INTO k_ident (v) VALUES ('after'); INSERT INTO readd (id, y, x) VALUES (902, 'a', 3); COMMIT;
INSERT INTO k_ident (v) VALUES ('later');
SQL
sleep 1
kill -TERM $APID; wait $APID
out=$("$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" 2>&1); rc=$?
is "$rc" 1 "a dropped column stops the restore (exit 1)"
like "$out" "segment [0-9a-f]{16}, source transaction [0-9]+ committed at [0-9A-F]+/[0-9A-F]+ \(20" "naming segment, LSN and commit time"
like "$out" "public.readd differs from the target: column z dropped on the source.*ALTER TABLE public.readd DROP COLUMN z" "the table, the difference and the fix"
is "$(psql_at_db "$Q" ddl -c "select string_agg(v, ',' order by id) from k_ident where v like 'before%' or v in ('after', 'later')")" \
	"before 1,before 2" "everything before that transaction is committed, nothing of it or after"
psql_at_db "$Q" ddl -c "ALTER TABLE readd DROP COLUMN z" >/dev/null
"$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" > "$T/restore-ddl.log" 2>&1
is "$?" 0 "after the fix the restore goes on"
is "$(psql_at_db "$Q" ddl -c "select string_agg(v, ',' order by id) from k_ident where v like 'before%' or v in ('after', 'later')")" \
	"before 1,before 2,after,later" "and applies the rest exactly once"
psql_at "$P" -c "ALTER TABLE readd ADD COLUMN w text DEFAULT 'w'" -c "INSERT INTO readd (id) VALUES (903)" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent2.log" 2>&1
out=$("$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" 2>&1); rc=$?
is "$rc" 1 "an added column stops it too"
like "$out" "column w added on the source.*ALTER TABLE public.readd ADD COLUMN w text" "naming the column, its type and the fix"
# a dropped table sends no change of its own: the agent's sample of the
# published tables tells the restore, which stops there
psql_at_db "$Q" ddl -c "ALTER TABLE readd ADD COLUMN w text DEFAULT 'w'" >/dev/null
"$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" > /dev/null 2>&1
is "$?" 0 "once the column is added on the target, the restore catches up"
"$AGENT" --source "$SRC" --store "$S" --flush-interval 0.2 > "$T/agent3.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent3.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
psql_at "$P" -c "DROP TABLE k_arr" -c "INSERT INTO k_ident (v) VALUES ('after drop')" >/dev/null
# the sample is taken when a segment closes and written with a later one
samples() {	# the logship.tables messages of the store, one a line
	"$RESTORE" cat --store "$S" 2>/dev/null |
	jq -r 'select(.type == "message" and .prefix == "logship.tables") | .content' |
	while read -r c; do printf '%s' "$c" | base64 -d; echo; done
}
i=0; until samples | grep -vq k_arr || [ $i -gt 60 ]; do
	psql_at "$P" -c "INSERT INTO k_ident (v) VALUES ('next')" >/dev/null
	sleep 0.5; i=$((i+1))
done
kill -TERM $APID; wait $APID
"$RESTORE" cat --store "$S" > "$T/cat.json" 2>/dev/null
like "$(jq -r 'select(.type == "message") | .prefix' "$T/cat.json" | sort -u)" "^logship.tables$" \
	"the store holds the agent's samples of the published tables"
out=$("$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" 2>&1); rc=$?
is "$rc" 1 "a table dropped on the source stops the restore"
like "$out" "source LSN [0-9A-F]+/[0-9A-F]+: the source no longer publishes table\(s\) public.k_arr" "naming the table"
is "$(psql_at_db "$Q" ddl -c "select count(*) from k_ident where v = 'after drop'")" "1" \
	"after committing every transaction before the sample"
psql_at_db "$Q" ddl -c "DROP TABLE k_arr" >/dev/null
"$RESTORE" --store "$S" --target "$(dst ddl)" --state-dir "$T/st-ddl" > /dev/null 2>&1
is "$?" 0 "once it is dropped on the target too, the restore goes on"
done_testing
