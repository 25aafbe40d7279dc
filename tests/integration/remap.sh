#!/bin/sh
# --id-mode remap into a target that already holds colliding IDs:
# parent -> child -> grandchild foreign keys, a self-referencing tree, a
# UUID-keyed table, a composite key, a composite foreign key containing a
# remapped key; inserts, updates, key changes and deletes.  Every foreign
# key resolves, each restored row equals its source row under the map, the
# existing rows are untouched; kill -9 at random points and between the
# LMDB commit and the target commit: no duplicates, map and rows agree.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
cat > "$T/schema.sql" <<'SQL'
CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL, UNIQUE (id, name));
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent,
    pname text, FOREIGN KEY (parent_id, pname) REFERENCES parent (id, name));
CREATE TABLE grandchild (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    child_id int REFERENCES child, v text);
CREATE TABLE tree (id serial PRIMARY KEY, parent_id int REFERENCES tree, label text);
CREATE TABLE u (id uuid DEFAULT gen_random_uuid() PRIMARY KEY,
    parent_id int REFERENCES parent, v text);
CREATE TABLE comp (a int, b int, v text, PRIMARY KEY (a, b));
SQL
psql_at "$P" -f "$T/schema.sql" >/dev/null
for db in one two three; do
	psql_at "$Q" -c "create database $db" >/dev/null
	psql_at_db "$Q" $db -f "$T/schema.sql" >/dev/null
	# rows already there, with the IDs the source will use too
	psql_at_db "$Q" $db -c "INSERT INTO parent (name) SELECT 'old' || g FROM generate_series(1, 30) g" \
	    -c "INSERT INTO child (parent_id, pname) VALUES (1, 'old1'), (2, 'old2')" \
	    -c "INSERT INTO tree (label) VALUES ('oldroot')" >/dev/null
	psql_at_db "$Q" $db -c "select md5(string_agg(x::text, ',' order by x::text)) from (select * from parent union all select id, pname from child) x" > "$T/old.$db"
done

psql_at "$P" >/dev/null <<'SQL'
INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, 20) g;
INSERT INTO child (parent_id, pname) SELECT g, 'p' || g FROM generate_series(1, 20) g;
INSERT INTO tree (label) VALUES ('root');
INSERT INTO tree (parent_id, label) SELECT 1, 't' || g FROM generate_series(1, 5) g;
INSERT INTO comp SELECT g, g, 'c' FROM generate_series(1, 5) g;
SQL
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
for round in 1 2 3 4 5 6; do
	psql_at "$P" >/dev/null <<SQL
INSERT INTO parent (name) SELECT 'r${round}_' || g FROM generate_series(1, 10) g;
INSERT INTO child (parent_id, pname) SELECT id, name FROM parent WHERE name LIKE 'r${round}_%';
INSERT INTO grandchild (child_id, v) SELECT id, 'g$round' FROM child WHERE pname LIKE 'r${round}_%';
INSERT INTO tree (parent_id, label) SELECT id, label || '.$round' FROM tree WHERE parent_id = 1 AND label NOT LIKE '%.%';
INSERT INTO u (parent_id, v) SELECT id, 'u$round' FROM parent WHERE name LIKE 'r${round}_%' LIMIT 3;
UPDATE child SET pname = NULL WHERE pname = 'r${round}_1';
UPDATE child SET parent_id = (SELECT min(id) FROM parent) WHERE pname IS NULL AND parent_id <> (SELECT min(id) FROM parent);
DELETE FROM grandchild WHERE v = 'g$round' AND id % 3 = 0;
UPDATE comp SET v = 'c$round';
UPDATE tree SET id = id + 1000 WHERE label = 't1.$round';
SQL
	sleep 0.3
done
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "the store holds the workload"

check_db() {	# check_db DB: the restored rows against the source
	db=$1
	orphans=$(psql_at_db "$Q" "$db" -c "select
	  (select count(*) from child c left join parent p on p.id = c.parent_id where c.parent_id is not null and p.id is null) +
	  (select count(*) from child c left join parent p on (p.id, p.name) = (c.parent_id, c.pname) where c.parent_id is not null and c.pname is not null and p.id is null) +
	  (select count(*) from grandchild g left join child c on c.id = g.child_id where g.child_id is not null and c.id is null) +
	  (select count(*) from tree t left join tree p on p.id = t.parent_id where t.parent_id is not null and p.id is null) +
	  (select count(*) from u left join parent p on p.id = u.parent_id where u.parent_id is not null and p.id is null)")
	is "$orphans" "0" "$db: every foreign key resolves"
	# rows equal under the map: compare what each row says through its references
	q="select coalesce(md5(string_agg(x, ',' order by x)), '-') from ("
	for v in \
	    "select p.name || '|' || coalesce(c.pname, '') from child c join parent p on p.id = c.parent_id where p.name not like 'old%'" \
	    "select c.pname || '|' || g.v from grandchild g join child c on c.id = g.child_id where c.pname not like 'old%'" \
	    "select t.label || '|' || coalesce(p.label, '') from tree t left join tree p on p.id = t.parent_id where t.label <> 'oldroot'" \
	    "select p.name || '|' || u.v from u join parent p on p.id = u.parent_id" \
	    "select a || '|' || b || '|' || v from comp" ; do
		is "$(psql_at_db "$Q" "$db" -c "$q $v) s(x)")" "$(psql_at "$P" -c "$q $v) s(x)")" "$db: same rows under the map: ${v%% from*}"
	done
	for t in parent child grandchild tree u comp; do
		case $t in
		parent) w="name not like 'old%'" ;;
		child) w="coalesce(pname, '') not like 'old%'" ;;
		tree) w="label <> 'oldroot'" ;;
		*) w=true ;;
		esac
		is "$(psql_at_db "$Q" "$db" -c "select count(*) from $t where $w")" \
		   "$(psql_at "$P" -c "select count(*) from $t")" "$db: $t has each source row once"
	done
	is "$(psql_at_db "$Q" "$db" -c "select md5(string_agg(x::text, ',' order by x::text)) from (select * from parent where name like 'old%' union all select id, pname from child where pname like 'old%') x")" \
	   "$(cat "$T/old.$db")" "$db: the rows already there are untouched"
}

"$RESTORE" --store "$S" --target "$(dst one)" --state-dir "$T/st1" --id-mode remap > "$T/r1.log" 2>&1
is "$?" 0 "remap restore exits 0" || tail -n 5 "$T/r1.log" | sed 's/^/# /'
check_db one
src_key=$(psql_at "$P" -c "select id from parent where name = 'p7'")
new_key=$(psql_at_db "$Q" one -c "select id from parent where name = 'p7'")
is "$("$RESTORE" idmap --state-dir "$T/st1" public.parent "$src_key")" "$new_key" "idmap prints the new key"
is "$("$RESTORE" idmap --state-dir "$T/st1" --reverse public.parent "$new_key")" "$src_key" "and --reverse the original"
restored=$(psql_at_db "$Q" one -c "select (select count(*) from parent where name not like 'old%') + (select count(*) from child where coalesce(pname,'') not like 'old%') + (select count(*) from grandchild) + (select count(*) from tree where label <> 'oldroot') + (select count(*) from u)")
is "$("$RESTORE" idmap --state-dir "$T/st1" --count)" "$restored" "one map entry per restored row of the remapped tables"

# kill -9 right between the LMDB and the target commits (db two), and at
# random moments from the start, base load included (db three)
rbg() {	# rbg DB STATE [ENV=VALUE]
	_db=$1; _st=$2; shift 2
	( exec env "$@" "$RESTORE" --store "$S" --target "$(dst $_db)" --state-dir "$_st" \
	    --id-mode remap --batch-txns 1 >> "$T/r2.log" 2>&1 ) &
	RP=$!; track_pid $RP
}
rbg two "$T/st2" LOGSHIP_CRASHPOINT=restore-after-map-commit:2; wait $RP; c1=$?
rbg two "$T/st2" LOGSHIP_CRASHPOINT=restore-after-map-commit:3; wait $RP; c2=$?
is "$c1 $c2" "137 137" "two runs died between the ID map commit and the target commit"
kills=0
for n in 1 2 3 4 5 6 7 8; do
	rbg three "$T/st3" X=1
	sleep "0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))"
	kill -9 $RP 2>/dev/null && kills=$((kills + 1))
	wait $RP 2>/dev/null
done
diag "killed the restore $kills times at random"
[ $kills -ge 3 ]; ok $? "random kills landed mid-restore ($kills)"
"$RESTORE" --store "$S" --target "$(dst two)" --state-dir "$T/st2" --id-mode remap >> "$T/r2.log" 2>&1
is "$?" 0 "db two: the restore completes after the crashes"
"$RESTORE" --store "$S" --target "$(dst three)" --state-dir "$T/st3" --id-mode remap >> "$T/r2.log" 2>&1
st=$?; is "$st" 0 "db three: the restore completes after the kills"
[ "$st" -eq 0 ] || grep -E "error|warn" "$T/r2.log" | tail -n 5 | sed 's/^/# /'
for db in two three; do
	check_db $db
	restored=$(psql_at_db "$Q" $db -c "select (select count(*) from parent where name not like 'old%') + (select count(*) from child where coalesce(pname,'') not like 'old%') + (select count(*) from grandchild) + (select count(*) from tree where label <> 'oldroot') + (select count(*) from u)")
	st="$T/st2"; [ $db = three ] && st="$T/st3"
	is "$("$RESTORE" idmap --state-dir "$st" --count)" "$restored" "$db: no map entry without its row, no row without its entry"
done

done_testing
