#!/bin/sh
# The net change of updates (restore/fold.c): inside one target transaction
# that covers many source transactions, repeated updates of a row are sent
# as its last image.  A stream of hot-row updates (one TOASTed column left
# unsent by most of them), deletes and re-inserts of held rows, a key
# change, and the tables whose updates must not fold: a second unique
# column whose values are swapped between rows, a foreign key whose parent
# is deleted right after its child moved away (ON DELETE CASCADE would
# take the child), REPLICA IDENTITY FULL.  The restore folds (its summary
# counts them), and the target equals the source; with one source
# transaction per target transaction too.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE hot (id int PRIMARY KEY, n int NOT NULL, big text);
INSERT INTO hot SELECT g, 0, (SELECT string_agg(md5(g::text || x::text), '')
	FROM generate_series(1, 400) x) FROM generate_series(1, 6) g;
CREATE TABLE uq (id int PRIMARY KEY, u int UNIQUE, v text);
INSERT INTO uq VALUES (1, 1, 'a'), (2, 2, 'b');
CREATE TABLE parent (id int PRIMARY KEY, v text);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE, v text);
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
INSERT INTO child VALUES (1, 1, 'c1'), (2, 2, 'c2');
CREATE TABLE full_id (a int, b text);
ALTER TABLE full_id REPLICA IDENTITY FULL;
INSERT INTO full_id VALUES (1, 'x'), (2, 'y');
SQL
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent took the base and streams"

{
	i=1
	while [ $i -le 400 ]; do
		echo "UPDATE hot SET n = n + 1 WHERE id = $((i % 5 + 1));"
		echo "BEGIN; UPDATE hot SET n = n + 1 WHERE id = 1; UPDATE hot SET n = (n * 3) % 1000003 WHERE id = 1; COMMIT;"
		[ $((i % 50)) -eq 0 ] && echo "UPDATE hot SET big = big || 'x$i' WHERE id = 2;"
		[ $((i % 100)) -eq 0 ] && echo "DELETE FROM hot WHERE id = 6; INSERT INTO hot VALUES (6, $i, 'again'); UPDATE hot SET n = n + 1 WHERE id = 6;"
		i=$((i + 1))
	done
	echo "UPDATE hot SET id = 60 WHERE id = 3;"
	echo "UPDATE hot SET n = -1 WHERE id = 60;"
	echo "UPDATE hot SET n = n + 1 WHERE id = 60;"
	echo "UPDATE uq SET u = 3 WHERE id = 1;"
	echo "UPDATE uq SET u = 1 WHERE id = 2;"
	echo "UPDATE uq SET v = 'a2' WHERE id = 1;"
	echo "UPDATE uq SET u = 2 WHERE id = 1;"
	echo "UPDATE child SET v = 'c1x' WHERE id = 1;"
	echo "UPDATE child SET parent_id = 2 WHERE id = 1;"
	echo "DELETE FROM parent WHERE id = 1;"
	echo "UPDATE child SET v = 'c1y' WHERE id = 1;"
	echo "UPDATE full_id SET b = 'x2' WHERE a = 1;"
	echo "UPDATE full_id SET b = 'x3' WHERE a = 1;"
	echo "INSERT INTO hot VALUES (99, 0, 'END');"
} > "$T/work.sql"
psql_at "$P" -f "$T/work.sql" > "$T/work.out" 2>&1
st=$?; ok $st "the workload ran on the source"; [ $st -eq 0 ] || tail -n 3 "$T/work.out" | sed "s/^/# /"
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything"
fingerprint "$P" postgres > "$T/fp.src"

for b in 1000 1; do
	psql_at "$Q" -c "create database b$b" >/dev/null
	"$RESTORE" --store "$S" --target "$(dst b$b)" --state-dir "$T/st$b" --batch-txns $b > "$T/r$b.log" 2>&1
	ok $? "--batch-txns $b: the restore exits 0"
	fingerprint "$Q" b$b > "$T/fp.b$b"
	cmp -s "$T/fp.src" "$T/fp.b$b"; ok $? "--batch-txns $b: the target equals the source"
	cmp -s "$T/fp.src" "$T/fp.b$b" || diff "$T/fp.src" "$T/fp.b$b" | head -n 10 | sed 's/^/# /'
done
folded=$(sed -n 's/.*summary: .* folded=\([0-9]*\) .*/\1/p' "$T/r1000.log")
diag "folded: $folded of $(grep -c '^UPDATE\|UPDATE' "$T/work.sql") update lines"
[ "${folded:-0}" -ge 700 ]; ok $? "many source transactions a batch: hot-row updates fold ($folded)"
is "$(psql_at_db "$Q" b1000 -c "select n || ' ' || md5(big) from hot where id = 1")" \
	"$(psql_at "$P" -c "select n || ' ' || md5(big) from hot where id = 1")" \
	"a folded row has its last values and the TOASTed value its updates left unsent"

done_testing
