#!/bin/sh
# One transaction inserting 1,000,000 rows is captured whole, with bounded
# agent memory (peak RSS under 64 MB, checked on builds without ASan,
# whose shadow memory and quarantine inflate RSS).  Also: an aborted
# streamed transaction leaves nothing behind.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"
psql_at "$P" -c "CREATE TABLE big (id int primary key, pad text)" \
	-c "CREATE TABLE spill (id int primary key, pad text)" >/dev/null
psql_at "$P" -c "ALTER SYSTEM SET logical_decoding_work_mem = '4MB'" -c "select pg_reload_conf()" >/dev/null

"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.5 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; while ! grep -q "streaming generation" "$T/agent.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
psql_at "$P" -c "BEGIN; INSERT INTO big SELECT g, 'aborted' FROM generate_series(1, 200000) g; ROLLBACK" >/dev/null
psql_at "$P" -c "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g" >/dev/null
ok $? "1,000,000-row transaction committed"
# A transaction streamed in pieces and spilled by the agent (over its 4 MiB
# in memory) whose subtransactions roll back after the spill: their
# messages must leave the agent's spool file and its write buffer alike.
psql_at "$P" >/dev/null <<'SQL'
BEGIN;
INSERT INTO spill SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 60000) g;
SAVEPOINT a;
INSERT INTO spill SELECT g, 'rolled back a' FROM generate_series(100001, 100500) g;
SAVEPOINT a2;
UPDATE spill SET pad = 'rolled back a2' WHERE id <= 40000;
ROLLBACK TO a;
UPDATE spill SET pad = md5(pad) WHERE id % 5 = 0;
SAVEPOINT b;
INSERT INTO spill SELECT g, 'rolled back b' FROM generate_series(200001, 200100) g;
ROLLBACK TO b;
SAVEPOINT c;
DELETE FROM spill WHERE id % 7 = 0;
INSERT INTO spill SELECT g, 'kept c' FROM generate_series(300001, 300200) g;
RELEASE c;
COMMIT;
SQL
ok $? "a 60,000-row transaction with subtransactions rolled back committed"
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent reached --endpos"
"$RESTORE" cat --store "$S" > "$T/all.json"
is "$(jq -r 'select(.type=="insert" and .relation=="public.big") | 1' "$T/all.json" | wc -l | tr -d ' ')" "1000000" "all 1,000,000 rows stored"
is "$(jq -r 'select(.type=="begin") | 1' "$T/all.json" | wc -l | tr -d ' ')" "2" "as one transaction (and the spill transaction)"
is "$(jq -r 'select(.type=="commit") | .changes' "$T/all.json" | sort -n | tail -n 1)" "1000000" "whose commit counts 1,000,000 changes"
is "$(grep -c '"aborted"' "$T/all.json")" "0" "the aborted streamed transaction left nothing"
is "$(grep -c 'rolled back' "$T/all.json")" "0" "no message of a rolled-back subtransaction was stored"
psql_at "$P" -c "CREATE DATABASE target" >/dev/null
"$RESTORE" --store "$S" --target "host=127.0.0.1 port=$P user=postgres dbname=target" \
	--state-dir "$T/state" > "$T/restore.log" 2>&1
ok $? "restored into database target"
fingerprint "$P" postgres > "$T/fp.src"; fingerprint "$P" target > "$T/fp.dst"
diff "$T/fp.src" "$T/fp.dst" > "$T/fp.diff"
ok $? "the target's fingerprint equals the source's (tables big and spill)"
is "$(psql_at_db "$P" target -c "select count(*) from spill where pad like 'rolled back%'")" "0" \
	"no row of a rolled-back subtransaction in the target"
rss=$(grep -o 'peak_rss_kb=[0-9]*' "$T/agent.log" | head -n 1 | cut -d= -f2)
diag "agent peak RSS: ${rss} kB"
if ldd "$AGENT" | grep -q libasan; then
	ok 0 "# SKIP peak RSS bound: ASan build (measured ${rss} kB)"
else
	[ -n "$rss" ] && [ "$rss" -lt 65536 ]; ok $? "agent peak RSS ${rss} kB < 64 MB"
fi

done_testing
