#!/bin/sh
# Parallel apply that keeps commit order (restore/parallel.c,
# --apply-workers).  A seeded random workload written to defeat it: rows
# updated in every transaction (conflicts between every pair of segments),
# keys moved and rows deleted and inserted again under the same key, unique
# values swapped between rows (a second unique index: applied in order), a
# foreign key whose child moves between parents, a key-less REPLICA
# IDENTITY FULL table with duplicate rows updated and deleted, a TRUNCATE
# (a barrier), a sequence; every source transaction also inserts its
# number into a key-less log, which proves each was applied exactly once.
# The agent cuts many small segments.  Restores with 4 workers, 1 worker,
# killed after target commits and at random moments, with a chunk failing
# on purpose (the fallback applies it in order), and stopped by a target
# error (the marker stays at the last whole segment; the rerun finishes):
# each time the target equals the source.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL, note text);
INSERT INTO acct SELECT g, 0, 'n' || g FROM generate_series(1, 300) g;
CREATE TABLE hot (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO hot SELECT g, 0 FROM generate_series(1, 3) g;
CREATE TABLE uq (id int PRIMARY KEY, u int UNIQUE NOT NULL);
INSERT INTO uq SELECT g, g FROM generate_series(1, 20) g;
CREATE TABLE parent (id int PRIMARY KEY, v text);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, v text);
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 10) g;
INSERT INTO child SELECT g, g % 10 + 1, 'c' || g FROM generate_series(1, 40) g;
CREATE TABLE bag (a int, b text);
ALTER TABLE bag REPLICA IDENTITY FULL;
INSERT INTO bag SELECT g % 5, 'x' FROM generate_series(1, 30) g;
CREATE TABLE scratch (id int PRIMARY KEY, v text);
CREATE TABLE txlog (txn int NOT NULL, at text);
ALTER TABLE txlog REPLICA IDENTITY FULL;
CREATE SEQUENCE tick;
SQL
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 \
	--segment-max-txns 40 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent took the base and streams"

# the workload: 1200 transactions, seeded
python3 - > "$T/work.sql" <<'PY'
import random
r = random.Random(20261206)
uq = dict((i, i) for i in range(1, 21))
for t in range(1, 1201):
    s = ["BEGIN;", "INSERT INTO txlog VALUES (%d, 'a');" % t]
    for _ in range(r.randint(1, 4)):
        s.append("UPDATE acct SET bal = bal + %d, note = note || '.' WHERE id = %d;" % (r.randint(-50, 50), r.randint(1, 300)))
    s.append("UPDATE hot SET n = (n * 3 + %d) %% 1000000007 WHERE id = %d;" % (t, r.randint(1, 3)))
    k = r.random()
    if k < 0.05:
        a = r.randint(1, 300)
        s.append("UPDATE acct SET id = id + 100000 WHERE id = %d;" % a)
        s.append("UPDATE acct SET id = id - 100000 WHERE id = %d;" % (a + 100000))
    elif k < 0.10:
        a = r.randint(1, 300)
        s.append("DELETE FROM acct WHERE id = %d;" % a)
        s.append("INSERT INTO acct VALUES (%d, %d, 'again') ON CONFLICT DO NOTHING;" % (a, t))
    elif k < 0.15:
        x, y = r.sample(range(1, 21), 2)
        s.append("UPDATE uq SET u = 0 WHERE id = %d;" % x)
        s.append("UPDATE uq SET u = %d WHERE id = %d;" % (uq[x], y))
        s.append("UPDATE uq SET u = %d WHERE id = %d;" % (uq[y], x))
        uq[x], uq[y] = uq[y], uq[x]
    elif k < 0.20:
        c = r.randint(1, 40)
        s.append("UPDATE child SET parent_id = %d, v = v || '>' WHERE id = %d;" % (r.randint(1, 10), c))
    elif k < 0.25:
        s.append("INSERT INTO bag VALUES (%d, 'x');" % r.randint(0, 4))
        s.append("UPDATE bag SET b = b || 'y' WHERE ctid = (SELECT ctid FROM bag WHERE a = %d LIMIT 1);" % r.randint(0, 4))
    elif k < 0.28:
        s.append("DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = %d LIMIT 1);" % r.randint(0, 4))
    elif k < 0.33:
        a = r.randint(1, 50)
        s.append("INSERT INTO scratch VALUES (%d, 'v%d') ON CONFLICT (id) DO UPDATE SET v = excluded.v;" % (a, t))
        s.append("SELECT nextval('tick');")
    if t == 600:
        s.append("TRUNCATE scratch;")
    if t % 97 == 0:
        s.append("SAVEPOINT s1; UPDATE acct SET bal = 0 WHERE id = 1; ROLLBACK TO s1;")
    s.append("COMMIT;")
    print(" ".join(s))
PY
ok $? "the workload is generated"
before=$(psql_at "$P" -c "select pg_current_wal_lsn()")
psql_at "$P" -f "$T/work.sql" > "$T/work.out" 2>&1
st=$?; ok $st "the workload ran on the source"
[ $st -eq 0 ] || { tail -n 3 "$T/work.out" | sed "s/^/# /"; echo "Bail out! the workload failed"; exit 1; }
kill -TERM $A; wait $A
# what the first run had not stored at the SIGTERM (more on a slow build) is
# stored by a second, with the same segment limits: the count below must not
# depend on how far the first run got
"$AGENT" --source "$SRC" --store "$S" --flush-interval 0.2 --segment-max-txns 40 \
	--endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything"
# a segment fills at a commit and goes up while the stream is read: the next
# transaction must not arrive inside the commit that filled it
is "$(grep -E ' (error|warn) ' "$T/agent.log" | head -n 3)" "" "the agent streamed without an error or a reconnection"
nseg=$(ls "$S"/*/seg/ 2>/dev/null | grep -c '^[0-9a-f]\{16\}$')
diag "segments: $nseg"
[ "$nseg" -ge 25 ]; ok $? "segments kept their --segment-max-txns 40 ($nseg for 1200 transactions)"
fingerprint "$P" postgres > "$T/fp.src"

same() {	# same DB DESCRIPTION
	fingerprint "$Q" "$1" > "$T/fp.$1"
	cmp -s "$T/fp.src" "$T/fp.$1"; ok $? "$2: the target equals the source"
	cmp -s "$T/fp.src" "$T/fp.$1" || diff "$T/fp.src" "$T/fp.$1" | head -n 10 | sed 's/^/# /'
	is "$(psql_at_db "$Q" "$1" -c "select count(*) || ' ' || count(distinct txn) || ' ' || min(txn) || ' ' || max(txn) from txlog")" \
		"1200 1200 1 1200" "$2: every source transaction applied exactly once"
}
restore() {	# restore DB LOG [options...]
	_db=$1; _log=$2; shift 2
	"$RESTORE" --store "$S" --target "$(dst "$_db")" --state-dir "$T/st.$_db" "$@" >> "$_log" 2>&1
}

# 4 workers, and 1 (serial): the same result
for w in 4 1; do
	psql_at "$Q" -c "create database w$w" >/dev/null
	restore w$w "$T/w$w.log" --apply-workers $w -v
	ok $? "--apply-workers $w: the restore exits 0"
	same w$w "--apply-workers $w"
done
par=$(sed -n 's/.*summary: .* parallel=\([0-9]*\) early=\([0-9]*\) .*/\1 \2/p' "$T/w4.log")
diag "4 workers: segments in parallel, changes sent early: $par"
[ "${par%% *}" -ge 10 ] && [ "${par##* }" -ge 1000 ]
ok $? "4 workers: most segments went in parallel, with many changes early ($par)"
grep -e 'in order' -e 'parallel' "$T/w4.log" | head -n 5 | sed 's/^/# /'
like "$(cat "$T/w1.log")" "parallel=0 early=0" "1 worker: nothing in parallel"
like "$(cat "$T/w4.log")" "applied in order: TRUNCATE" "the segment with the TRUNCATE is a barrier"

# killed after the nth commit (of a chunk, between target and LMDB)
for n in 1 4 9; do
	psql_at "$Q" -c "create database k$n" >/dev/null
	LOGSHIP_CRASHPOINT=restore-after-target-commit:$n restore k$n "$T/k$n.log" --apply-workers 3
	st=$?
	[ $st -ne 0 ]; ok $? "killed after commit $n (exit $st)"
	restore k$n "$T/k$n.log" --apply-workers 3
	ok $? "killed after commit $n: the rerun exits 0"
	same k$n "killed after commit $n"
done

# killed at random moments, while several workers hold open transactions
psql_at "$Q" -c "create database rk" >/dev/null
kills=0; r=0
while [ $r -lt 8 ]; do
	"$RESTORE" --store "$S" --target "$(dst rk)" --state-dir "$T/st.rk" --apply-workers 4 >> "$T/rk.log" 2>&1 &
	R=$!
	sleep "0.$(awk -v s=$r 'BEGIN { srand(s); printf "%d", 2 + rand() * 6 }')"
	if kill -KILL $R 2>/dev/null; then kills=$((kills + 1)); fi
	wait $R 2>/dev/null
	r=$((r + 1))
done
diag "random kills that landed: $kills"
restore rk "$T/rk.log" --apply-workers 4
ok $? "after $kills random kills: the rerun exits 0"
same rk "after random kills"

# a chunk fails in a worker: it and the later ones go in order, once
psql_at "$Q" -c "create database fb" >/dev/null
LOGSHIP_TEST_PARALLEL_FAIL=0000000000000008 restore fb "$T/fb.log" --apply-workers 3
ok $? "a chunk failing in a worker: the restore exits 0"
like "$(cat "$T/fb.log")" "segment 0000000000000008 failed \(failing on purpose.*applied in order" "the fallback is logged"
same fb "after the fallback"

# a target error in a parallel chunk: a clear error, the marker at a whole
# segment before it, and the rerun finishes once the target accepts it
psql_at "$Q" -c "create database te" >/dev/null
restore te "$T/te0.log" --until-lsn "$before"
ok $? "the base alone (--until-lsn before the workload)"
psql_at_db "$Q" te -c "alter table acct add constraint no_big check (length(note) < 9)" >/dev/null
restore te "$T/te.log" --apply-workers 3
st=$?
is "$st" 1 "a CHECK the target added fails the restore (exit 1)"
like "$(grep ' error ' "$T/te.log")" "no_big.*table public.acct, segment [0-9a-f]{16}, source transaction [0-9]+" "one error line naming the constraint, the table, the segment and the transaction"
mk=$(psql_at_db "$Q" te -c "select txns from logship.applied")
got=$(psql_at_db "$Q" te -c "select count(*) from txlog")
is "$got" "$mk" "the marker counts exactly the transactions applied ($mk)"
psql_at_db "$Q" te -c "alter table acct drop constraint no_big" >/dev/null
restore te "$T/te.log" --apply-workers 3
ok $? "without the CHECK the rerun exits 0"
same te "after the target error"

done_testing
