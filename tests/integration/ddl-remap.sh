#!/bin/sh
# DDL under --id-mode remap (issue 11), from a source captured with
# logship-agent --ddl, into targets that already hold colliding keys:
#  - a new table with a serial key, created and filled in one transaction,
#    gets keys from the target (its sequence exists only in that batch);
#    a second new table (identity key) refers to it; both foreign keys are
#    followed, updates and deletes find their rows through the map
#  - the remapped table renamed, its key column renamed, the table moved to
#    another schema: the map follows (idmap answers by the new name)
#  - a remapped table dropped and created again: the new one starts with an
#    empty map
#  - a key moved to a column without a default stops the restore with one
#    line, everything before it committed
#  - a --follow standby, a restore from scratch, and one killed between the
#    ID map commit and the target commit at every transaction: all equal
#    the source under the map, one map entry per row
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
echo "CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL UNIQUE);" > "$T/schema.sql"
psql_at "$P" -f "$T/schema.sql" -c "INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, 10) g" >/dev/null
for db in one two follow; do
	psql_at "$Q" -c "create database $db" >/dev/null
	psql_at_db "$Q" $db -f "$T/schema.sql" \
	    -c "INSERT INTO parent (name) SELECT 'old' || g FROM generate_series(1, 30) g" >/dev/null
done

"$AGENT" --source "$SRC" --store "$S" --init --ddl --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent with --ddl took the base and streams"

"$RESTORE" --store "$S" --target "$(dst follow)" --state-dir "$T/st-follow" --id-mode remap --follow > "$T/follow.log" 2>&1 &
F=$!; track_pid $F

psql_at "$P" -v ON_ERROR_STOP=1 -f - > "$T/w.out" 2>&1 <<'SQL'
BEGIN;
CREATE TABLE items (id serial PRIMARY KEY, parent_id int REFERENCES parent, label text);
INSERT INTO items (id, parent_id, label) SELECT 100 + g, g, 'i' || g FROM generate_series(1, 10) g;
COMMIT;
CREATE TABLE tags (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	item_id int REFERENCES items, t text);
INSERT INTO tags (item_id, t) SELECT id, 't' || id FROM items;
UPDATE items SET label = label || '!' WHERE id % 2 = 0;
DELETE FROM tags WHERE item_id = 103;
ALTER TABLE items ADD COLUMN note text;
INSERT INTO items (id, parent_id, label, note) VALUES (200, 3, 'i200', 'n');
ALTER TABLE items RENAME TO goods;
ALTER TABLE goods RENAME COLUMN id TO gid;
UPDATE goods SET note = 'renamed' WHERE gid = 105;
UPDATE goods SET gid = 205 WHERE gid = 200;
CREATE SCHEMA app;
ALTER TABLE goods SET SCHEMA app;
INSERT INTO app.goods (gid, parent_id, label) VALUES (300, 4, 'i300');
INSERT INTO tags (item_id, t) VALUES (300, 't300'), (205, 't205');
DELETE FROM tags WHERE item_id = 110;
DELETE FROM app.goods WHERE gid = 110;
CREATE TABLE doomed (id serial PRIMARY KEY, v text);
INSERT INTO doomed (id, v) VALUES (500, 'a'), (501, 'b');
DROP TABLE doomed;
CREATE TABLE doomed (id serial PRIMARY KEY, v text);
INSERT INTO doomed (id, v) VALUES (501, 'c');
INSERT INTO parent (name) VALUES ('END');
SQL
ok_or_show() { ok "$1" "$3"; [ "$1" -eq 0 ] || tail -n 8 "$2" | sed 's/^/# /'; }
ok_or_show $? "$T/w.out" "the DDL and rows ran on the source"
wait_row "$Q" follow "select count(*) from parent where name = 'END'" $F
is "$(psql_at_db "$Q" follow -c "select count(*) from parent where name = 'END'")" 1 "the --follow standby caught up through the DDL"

# then a key moved to a column without a default: the map cannot follow
psql_at "$P" -v ON_ERROR_STOP=1 -c "INSERT INTO doomed (id, v) VALUES (502, 'd')" \
	-c "ALTER TABLE doomed DROP CONSTRAINT doomed_pkey, ADD PRIMARY KEY (v)" \
	-c "INSERT INTO doomed (id, v) VALUES (503, 'e')" >/dev/null
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything"
i=0; while kill -0 $F 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -9 $F 2>/dev/null && diag "the standby did not stop: killed"
wait $F; is $? 1 "the --follow standby stops at the key change (exit 1)"
like "$(grep 'error restore:' "$T/follow.log")" "source transaction [0-9]+ committed at .*DDL at source LSN [0-9A-F/]+ not replayed: under --id-mode remap, public.doomed no longer has a single-column primary key id with a default: its ID map cannot follow the change; the source ran: ALTER TABLE doomed DROP CONSTRAINT doomed_pkey, ADD PRIMARY KEY \(v\).*--skip-ddl" \
	"naming the table, the statement and the way on"
is "$(grep -c 'error restore:' "$T/follow.log")" 1 "in one error line"
is "$(psql_at_db "$Q" follow -c "select string_agg(v, ',' order by v) from doomed")" "c,d" \
	"everything before it is committed, nothing of it or after"

# the rows, compared through their references (keys differ by design)
q="select coalesce(md5(string_agg(x, ',' order by x)), '-') from ("
views="select g.label || '|' || coalesce(g.note, '') || '|' || p.name from app.goods g join parent p on p.id = g.parent_id
select t.t || '|' || g.label from tags t join app.goods g on g.gid = t.item_id
select v from doomed where v in ('a', 'b', 'c')
select name from parent where name not like 'old%'"
check_db() {	# check_db DB STATE-DIR
	while read -r v; do
		is "$(psql_at_db "$Q" "$1" -c "$q $v) s(x)")" "$(psql_at "$P" -c "$q $v) s(x)")" \
			"$1: the same rows under the map: ${v%% from*}"
	done <<EOF
$views
EOF
	srckeys=$(psql_at "$P" -c "select string_agg(gid::text, ',') from app.goods")
	is "$(psql_at_db "$Q" "$1" -c "select string_agg(gid || ' ' || label, ', ') from app.goods where gid in ($srckeys)")" "" \
		"$1: the new table's keys come from the target's own sequence, none is the source's"
	is "$(psql_at_db "$Q" "$1" -c "select count(*) from parent p where name ~ '^p[0-9]+$' and p.id = substr(name, 2)::int")" 0 \
		"$1: the base table's keys too"
	k=$(psql_at_db "$Q" "$1" -c "select gid from app.goods where label = 'i5'")
	is "$("$RESTORE" idmap --state-dir "$2" app.goods 105)" "$k" "$1: idmap answers by the new name"
	"$RESTORE" idmap --state-dir "$2" public.items 105 >/dev/null 2>&1
	[ $? -ne 0 ]; ok $? "$1: and no longer by the old one"
	k=$(psql_at_db "$Q" "$1" -c "select id from doomed where v = 'c'")
	is "$("$RESTORE" idmap --state-dir "$2" public.doomed 501)" "$k" "$1: the table created again maps its own rows"
	"$RESTORE" idmap --state-dir "$2" public.doomed 500 >/dev/null 2>&1
	[ $? -ne 0 ]; ok $? "$1: the dropped table's entries are gone"
	rows=$(psql_at_db "$Q" "$1" -c "select (select count(*) from parent where name not like 'old%') +
		(select count(*) from app.goods) + (select count(*) from tags) + (select count(*) from doomed)")
	is "$("$RESTORE" idmap --state-dir "$2" --count)" "$rows" "$1: one map entry per restored row"
}
check_db follow "$T/st-follow"

# from scratch
"$RESTORE" --store "$S" --target "$(dst one)" --state-dir "$T/st-one" --id-mode remap > "$T/one.log" 2>&1
is $? 1 "a restore from scratch stops at the key change too"
check_db one "$T/st-one"

# killed between the ID map commit and the target commit, at every batch
runs=0; rc=137
while [ $rc -eq 137 ] && [ $runs -lt 80 ]; do
	LOGSHIP_CRASHPOINT=restore-after-map-commit:2 "$RESTORE" --store "$S" --target "$(dst two)" \
	    --state-dir "$T/st-two" --id-mode remap --batch-txns 1 >> "$T/two.log" 2>&1
	rc=$?; runs=$((runs + 1))
done
diag "$runs runs"
[ $runs -ge 20 ]; ok $? "the restore died between the two commits at each of its batches ($runs runs)"
is $rc 1 "then it reached the key change"
check_db two "$T/st-two"

done_testing
