#!/bin/sh
# The restore's I/O with the target (restore/apply.c): the connection is
# non-blocking, so statements queue in libpq while the restore decodes what
# follows (it waits only past 16 MB queued), and a long run of inserts
# streams into one open COPY, in 256 kB pieces, until something else needs
# the connection.  Here:
# - a row the target rejects deep inside one 20,000-row INSERT (a CHECK
#   the target added): one error line naming the constraint, the table, the
#   segment and the source transaction; nothing of that transaction on the
#   target, the marker at the transaction before; the rerun without the
#   CHECK finishes, with one worker and with parallel apply;
# - 60 MB of inserts and of updates of 20 kB rows in one transaction each
#   (COPY pieces and UPDATE-by-set statements far past the 16 MB queue),
#   then inserts into two tables in turn (the COPY ends at each switch) and
#   a table the target lacks after an open COPY (the COPY is ended, the
#   missing table named);
# - with DDL capture, a rejected row in a COPY followed in the same source
#   transaction by an ALTER TABLE: the error is the row's, not the DDL's (no --skip-ddl
#   advice, which would skip a DDL that was fine);
# each time the target equals the source, by fingerprint.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE big (id int PRIMARY KEY, n int NOT NULL, v text NOT NULL);
CREATE TABLE x (id int PRIMARY KEY, v text);
CREATE TABLE y (id int PRIMARY KEY, v text);
SQL
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent took the base and streams"
before=$(psql_at "$P" -c "select pg_current_wal_lsn()")

psql_at "$P" > "$T/work.out" 2>&1 <<'SQL'
INSERT INTO t SELECT g, 'first ' || g FROM generate_series(1, 100) g;
INSERT INTO t SELECT g, CASE WHEN g = 15000 THEN 'REJECTED by the target'
	ELSE md5(g::text) || E'\ttab\\back\nline' END
	FROM generate_series(101, 20100) g;
INSERT INTO big SELECT g, 0, repeat(md5(g::text), 640) FROM generate_series(1, 3000) g;
UPDATE big SET n = n + 1, v = v || 'u';
BEGIN;
INSERT INTO x SELECT g, 'x' || g FROM generate_series(1, 300) g;
INSERT INTO y SELECT g, 'y' || g FROM generate_series(1, 300) g;
INSERT INTO x SELECT g, 'x' || g FROM generate_series(301, 600) g;
UPDATE y SET v = v || '!' WHERE id % 7 = 0;
INSERT INTO y SELECT g, 'y' || g FROM generate_series(301, 600) g;
COMMIT;
CREATE TABLE z (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO x SELECT g, 'x' || g FROM generate_series(601, 900) g;
INSERT INTO z VALUES (1, 'the target lacks z');
COMMIT;
SQL
st=$?; ok $st "the workload ran on the source"; [ $st -eq 0 ] || tail -n 3 "$T/work.out" | sed "s/^/# /"
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything"

bad_xid=$(psql_at "$P" -c "select xmin from t where id = 15000")

restore() {	# restore DB LOG [args]
	db=$1; log=$2; shift 2
	"$RESTORE" --store "$S" --target "$(dst "$db")" --state-dir "$T/st.$db" "$@" > "$log" 2>&1
}

for w in 1 2; do
	db=w$w
	psql_at "$Q" -c "create database $db" >/dev/null
	restore $db "$T/$db.0.log" --until-lsn "$before"
	ok $? "workers $w: the base alone"
	psql_at_db "$Q" $db -c "alter table t add constraint not_rejected check (v not like 'REJECTED%')" >/dev/null
	restore $db "$T/$db.1.log" --apply-workers $w
	is "$?" 1 "workers $w: a row the target rejects 14,900 rows into a COPY fails the restore (exit 1)"
	like "$(grep ' error ' "$T/$db.1.log")" "COPY.*not_rejected.*table public.t, segment [0-9a-f]{16}, source transaction $bad_xid committed" \
		"workers $w: one error line naming the COPY, the constraint, the table, the segment and the row's transaction ($bad_xid)"
	# one worker batches both transactions, parallel apply commits the
	# first alone: either way the marker counts exactly what is there
	mk=$(psql_at_db "$Q" $db -c "select txns from logship.applied")
	is "$(psql_at_db "$Q" $db -c "select count(*) from t")" "$((100 * ${mk:-9}))" \
		"workers $w: nothing of the rejected transaction is on the target, the marker counts what is ($mk)"
	psql_at_db "$Q" $db -c "alter table t drop constraint not_rejected" >/dev/null
	restore $db "$T/$db.2.log" --apply-workers $w
	is "$?" 1 "workers $w: the rerun stops at the table the target lacks (exit 1)"
	like "$(grep ' error ' "$T/$db.2.log")" "table public.z does not exist on the target" \
		"workers $w: its error names the missing table"
	is "$(psql_at_db "$Q" $db -c "select count(*) from x")" 600 \
		"workers $w: the transaction with z is not applied, the one before it is"
	psql_at_db "$Q" $db -c "create table z (id int primary key, v text)" >/dev/null
	restore $db "$T/$db.3.log" --apply-workers $w
	ok $? "workers $w: with z created, the rerun exits 0"
	fingerprint "$P" postgres > "$T/fp.src"
	fingerprint "$Q" $db > "$T/fp.$db"
	cmp -s "$T/fp.src" "$T/fp.$db"; ok $? "workers $w: the target equals the source"
	cmp -s "$T/fp.src" "$T/fp.$db" || diff "$T/fp.src" "$T/fp.$db" | head -n 10 | sed 's/^/# /'
	is "$(psql_at_db "$Q" $db -c "select count(*) || ' ' || sum(n) || ' ' || min(length(v)) from big")" \
		"3000 3000 20481" "workers $w: the 60 MB of rows and their update arrived whole"
	is "$(psql_at_db "$Q" $db -c "select v from t where id = 15001")" \
		"$(psql_at "$P" -c "select v from t where id = 15001")" \
		"workers $w: tab, backslash and newline survive the COPY text"
done

# with DDL capture: a rejected row, then an ALTER TABLE in the same transaction
psql_at "$P" -c "create database d2" >/dev/null
SRC2="host=127.0.0.1 port=$P user=postgres dbname=d2"
S2="$T/store2"
psql_at_db "$P" d2 -c "create table u (id int primary key, v text not null)" >/dev/null
"$AGENT" --source "$SRC2" --store "$S2" --slot ls2 --init --ddl --flush-interval 0.2 > "$T/agent2.log" 2>&1 &
A2=$!; track_pid $A2
i=0; until grep -q "streaming generation" "$T/agent2.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent2.log"; ok $? "--ddl: the agent took the base and streams"
before2=$(psql_at "$P" -c "select pg_current_wal_lsn()")
psql_at_db "$P" d2 > "$T/work2.out" 2>&1 <<'SQL'
BEGIN;
INSERT INTO u SELECT g, CASE WHEN g = 150 THEN 'REJECTED' ELSE 'u' || g END FROM generate_series(1, 300) g;
ALTER TABLE u ADD COLUMN w int;
COMMIT;
INSERT INTO u VALUES (301, 'after', 1);
SQL
ok $? "--ddl: rows, then an ALTER TABLE, on the source"
kill -TERM $A2; wait $A2
"$AGENT" --source "$SRC2" --store "$S2" --slot ls2 --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent2.log" 2>&1
ok $? "--ddl: the agent stored everything"
psql_at "$Q" -c "create database dd" >/dev/null
"$RESTORE" --store "$S2" --target "$(dst dd)" --state-dir "$T/st.dd" --until-lsn "$before2" > "$T/dd.0.log" 2>&1
ok $? "--ddl: the base alone"
psql_at_db "$Q" dd -c "alter table u add constraint not_rejected check (v <> 'REJECTED')" >/dev/null
"$RESTORE" --store "$S2" --target "$(dst dd)" --state-dir "$T/st.dd" --apply-workers 1 > "$T/dd.1.log" 2>&1
is "$?" 1 "--ddl: the rejected row fails the restore (exit 1)"
err=$(grep -E ' (error|warning) ' "$T/dd.1.log")
like "$err" "COPY.*not_rejected.*table public.u" "--ddl: the error is the COPY's, naming the constraint and the table"
case "$err" in *skip-ddl*|*"not replayed"*) st=1 ;; *) st=0 ;; esac
ok $st "--ddl: and it does not blame the DDL or advise --skip-ddl"
[ $st -eq 0 ] || printf '%s\n' "$err" | sed 's/^/# /'
psql_at_db "$Q" dd -c "alter table u drop constraint not_rejected" >/dev/null
"$RESTORE" --store "$S2" --target "$(dst dd)" --state-dir "$T/st.dd" --apply-workers 1 > "$T/dd.2.log" 2>&1
ok $? "--ddl: without the CHECK the rerun exits 0"
fingerprint "$P" d2 > "$T/fp.d2"
fingerprint "$Q" dd > "$T/fp.dd"
cmp -s "$T/fp.d2" "$T/fp.dd"; ok $? "--ddl: the target equals the source"
cmp -s "$T/fp.d2" "$T/fp.dd" || diff "$T/fp.d2" "$T/fp.dd" | head -n 10 | sed 's/^/# /'

done_testing
