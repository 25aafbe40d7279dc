#!/bin/sh
# DDL replay under a seeded random workload (issue 11): a --follow standby
# of a logship-agent --ddl source stays equal to it (fingerprint: pg_dump
# -s and every table's rows) through bursts of random DDL and DML: columns
# added, dropped, renamed, retyped, defaults, NOT NULL, checks, indexes,
# tables created, renamed, dropped, enum labels, sequences, concurrent
# indexes, replica identity; single statements, several in one
# query string, and transactions.  Statements that fail on the source
# leave nothing in the stream, so the generator need not know the schema.
# LOGSHIP_DDL_SEED picks the sequence (default 11), LOGSHIP_DDL_BURSTS and
# LOGSHIP_DDL_STEPS its size (default 10 bursts of 20 steps).
. "$(dirname "$0")/lib.sh"
SEED=${LOGSHIP_DDL_SEED:-11}
BURSTS=${LOGSHIP_DDL_BURSTS:-10}
STEPS=${LOGSHIP_DDL_STEPS:-20}
diag "seed $SEED, $BURSTS bursts of $STEPS steps"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"

psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE burst (n int PRIMARY KEY);
CREATE TYPE mood AS ENUM ('0');
CREATE TABLE t1 (id serial PRIMARY KEY, c1 int, c2 text, m mood);
CREATE TABLE t2 (id serial PRIMARY KEY, c1 text, c3 int DEFAULT 3);
CREATE TABLE t3 (id serial PRIMARY KEY, c2 bigint NOT NULL DEFAULT 0);
INSERT INTO t1 (c1, c2) SELECT g, 'r' || g FROM generate_series(1, 20) g;
INSERT INTO t2 (c1) SELECT 'r' || g FROM generate_series(1, 20) g;
SQL
: > "$T/agent.log"
"$AGENT" --source "$SRC" --store "$S" --init --ddl --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent with --ddl streams"
psql_at "$Q" -c "create database standby" >/dev/null
"$RESTORE" --store "$S" --target "host=127.0.0.1 port=$Q user=postgres dbname=standby" \
	--state-dir "$T/st" --follow > "$T/follow.log" 2>&1 &
F=$!; track_pid $F

# gen SEED N: N random steps, one psql input line each ("\;" joins
# statements into one query string)
gen() {
	awk -v seed="$1" -v n="$2" 'BEGIN {
		srand(seed)
		q = sprintf("%c", 39)
		split("int text bigint", ty, " ")
		for (s = 0; s < n; s++) {
			t = "t" int(1 + rand() * 3); u = "t" int(1 + rand() * 3)
			c = "c" int(1 + rand() * 3); d = "c" int(1 + rand() * 4)
			v = int(rand() * 100); k = int(1 + rand() * 3)
			y = ty[int(1 + rand() * 3)]
			op = int(rand() * 28)
			if (op < 4) print "INSERT INTO " t " DEFAULT VALUES;"
			else if (op < 6) printf "UPDATE %s SET %s = %d WHERE id %% %d = 0;\n", t, c, v, k
			else if (op < 7) printf "DELETE FROM %s WHERE id %% 9 = %d;\n", t, v % 9
			else if (op < 9) printf "ALTER TABLE %s ADD COLUMN %s %s DEFAULT %d;\n", t, c, y, v
			else if (op < 10) print "ALTER TABLE " t " DROP COLUMN " c ";"
			else if (op < 11) print "ALTER TABLE " t " RENAME COLUMN " c " TO " d ";"
			else if (op < 12) printf "ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::%s;\n", t, c, y, c, y
			else if (op < 13) printf "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %d;\n", t, c, v
			else if (op < 14) print "ALTER TABLE " t " ALTER COLUMN " c (v < 50 ? " SET" : " DROP") " NOT NULL;"
			else if (op < 15) printf "ALTER TABLE %s ADD CONSTRAINT k%d CHECK (id > 0);\n", t, k
			else if (op < 16) printf "ALTER TABLE %s DROP CONSTRAINT k%d;\n", t, k
			else if (op < 17) printf "CREATE INDEX i%d_%s ON %s (%s);\n", k, t, t, c
			else if (op < 18) printf "DROP INDEX i%d_%s;\n", k, t
			else if (op < 20) print "CREATE TABLE IF NOT EXISTS " t " (id serial PRIMARY KEY, " c " " y ", c1 int);"
			else if (op < 21 && v < 40) print "DROP TABLE " t "\\; CREATE TABLE " t " (id serial PRIMARY KEY, c1 int);"
			else if (op < 21) print "ALTER TABLE " t " RENAME TO tmp\\; ALTER TABLE " u " RENAME TO " t "\\; ALTER TABLE tmp RENAME TO " u ";"
			else if (op < 22) printf "INSERT INTO %s DEFAULT VALUES\\; ALTER TABLE %s ADD COLUMN %s %s\\; UPDATE %s SET %s = %d;\n", t, t, c, y, t, c, v
			else if (op < 23) printf "ALTER TYPE mood ADD VALUE IF NOT EXISTS %s%d%s;\n", q, k, q
			else if (op < 24) printf "UPDATE t1 SET m = %s%d%s WHERE id %% %d = 0;\n", q, k, q, k + 1
			else if (op < 25) printf "CREATE INDEX CONCURRENTLY j%d_%s ON %s (%s);\n", k, t, t, c
			else if (op < 26) print "ALTER TABLE " t " REPLICA IDENTITY " (v < 50 ? "FULL;" : "DEFAULT;")
			else if (op < 27) printf "CREATE SEQUENCE IF NOT EXISTS s%d\\; SELECT nextval(%ss%d%s)\\; ALTER SEQUENCE s%d INCREMENT BY %d;\n", k, q, k, q, k, v + 1
			else printf "BEGIN; ALTER TABLE %s ADD COLUMN %s int; INSERT INTO %s DEFAULT VALUES; ALTER TABLE %s RENAME COLUMN %s TO %s; COMMIT;\n", t, c, t, t, c, d
		}
	}'
}

b=1
while [ $b -le "$BURSTS" ]; do
	gen $((SEED * 1000 + b)) "$STEPS" > "$T/burst$b.sql"
	psql_at "$P" -v ON_ERROR_STOP=0 -f "$T/burst$b.sql" > "$T/burst$b.out" 2>&1
	psql_at "$P" -c "INSERT INTO burst VALUES ($b)" >/dev/null
	wait_row "$Q" standby "select count(*) from burst where n = $b" $F
	fingerprint "$P" postgres > "$T/fp.src"
	fingerprint "$Q" standby > "$T/fp.dst"
	cmp -s "$T/fp.src" "$T/fp.dst"; ok $? "burst $b: the standby equals the source"
	if ! cmp -s "$T/fp.src" "$T/fp.dst"; then
		diff "$T/fp.src" "$T/fp.dst" | head -n 15 | sed 's/^/# /'
		tail -n 3 "$T/follow.log" | sed 's/^/# /'
		break
	fi
	b=$((b + 1))
done
is "$(grep -c . "$T"/burst*.sql | awk -F: '{ n += $2 } END { print n }')" $((BURSTS * STEPS)) \
	"$((BURSTS * STEPS)) random steps ran"
ran=$(cat "$T"/burst*.out | grep -c -e 'ERROR:' || true)
[ "$ran" -lt $((BURSTS * STEPS / 2)) ]; ok $? "most of them took effect ($ran errors)"
kill -TERM $F; wait $F; ok $? "the standby stops on SIGTERM with 0"
kill -TERM $A; wait $A

done_testing
