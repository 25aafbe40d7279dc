#!/bin/sh
# What keeps one store and one slot together (issue 9):
#  - a store without logship.json is refused unless --init (or init = true)
#    asks for it, and a mistyped --store leaves nothing behind;
#  - a fresh store never takes over an existing slot: the agent refuses and
#    the slot keeps its position;
#  - a base-less generation's own slot, that confirmed nothing, is redone;
#  - a slot that another consumer advanced past the store's end stops the
#    agent with a loud error, while the agent's own idle confirmations
#    (recorded in <gen>.confirmed) resume fine;
#  - FOR ALL TABLES checks leaves, not partitioned parents;
#  - start-up notices for large objects, unlogged tables and roles.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S1="$T/s1"
GEN=0000000000000001

psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE pt (id int NOT NULL, k int NOT NULL, v text) PARTITION BY RANGE (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (10) TO (20);
ALTER TABLE pt_1 ADD PRIMARY KEY (id);
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
SELECT lo_create(0);
CREATE DATABASE other;
SQL
psql_at_db "$P" other -c "CREATE TABLE noise (id serial, v text)" >/dev/null

lsn_now() { psql_at "$P" -c "select pg_current_wal_lsn()"; }
slot_confirmed() { psql_at "$P" -c "select confirmed_flush_lsn from pg_replication_slots where slot_name = '${1:-logship}'"; }
nslots() { psql_at "$P" -c "select count(*) from pg_replication_slots"; }
lsn_gt() { [ "$(psql_at "$P" -c "select '$1'::pg_lsn > '$2'::pg_lsn")" = t ]; }
last_end() {	# last_end STORE: end LSN of the last stored transaction
	"$RESTORE" cat --store "$1" 2>/dev/null | jq -r 'select(.type=="commit") | .end_lsn' | tail -n 1
}
wait_log() {	# wait_log FILE ERE: up to 30 s
	_i=0; while ! grep -Eq "$2" "$1" && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i+1)); done
	grep -Eq "$2" "$1"
}

# ---- A: no store is created unless asked -----------------------------------
out=$("$AGENT" --source "$SRC" --store "$T/typo/store" 2>&1); rc=$?
is "$rc" 1 "a store path without logship.json is refused (exit 1)"
like "$out" "store $T/typo/store holds no logship.json: not a logship store \(a typo in --store\?\); to create a new store there, run logship-agent once with --init" \
	"naming the store and --init"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "in one line"
test ! -e "$T/typo"; ok $? "and nothing was created there, not even the directory"
is "$(nslots)" 0 "no slot was created"
is "$(psql_at "$P" -c "select count(*) from pg_publication")" 0 "no publication was created"

# ---- C: a partitioned parent needs no replica identity; its leaves do --------
out=$("$AGENT" --source "$SRC" --store "$S1" --init --endpos 0/1 2>&1); rc=$?
is "$rc" 1 "a leaf partition without replica identity is refused"
like "$out" "refusing to publish FOR ALL TABLES: 1 table\(s\) .*: public\.pt_2;" \
	"naming the leaf only, not the partitioned parent"
psql_at "$P" -c "ALTER TABLE pt_2 ADD PRIMARY KEY (id)" >/dev/null

# ---- A: --init (here as the config key) creates the store ------------------
printf 'init = true\nflush-interval = 0.2\n' > "$T/a.conf"
: > "$T/a.log"
"$AGENT" --source "$SRC" --store "$S1" --config "$T/a.conf" >> "$T/a.log" 2>&1 &
A=$!; track_pid $A
wait_log "$T/a.log" "streaming generation"; ok $? "init = true: the agent creates the store and streams"
like "$(cat "$T/a.log")" "creating a new logship store" "saying it creates a store"
like "$(cat "$T/a.log")" "warn.*1 large object\(s\): carried in base snapshots only; logical decoding does not stream later changes to them" \
	"large objects are reported"
like "$(cat "$T/a.log")" "warn.*not carried: unlogged tables public\.scratch \(PostgreSQL never publishes them\)" \
	"unlogged tables are named"
like "$(cat "$T/a.log")" "roles are not carried.*pg_dumpall --roles-only" "roles are mentioned"
psql_at "$P" -c "INSERT INTO pt VALUES (1, 1, 'a'), (2, 15, 'b')" -c "UPDATE pt SET v = 'c' WHERE id = 2" \
	-c "INSERT INTO t VALUES (1, 'one')" >/dev/null
ok $? "updates through the partitioned parent work on the source"
sleep 1
kill -TERM $A; wait $A; is "$?" 0 "the agent stops on SIGTERM"
"$RESTORE" cat --store "$S1" > "$T/c1.json" 2>/dev/null
is "$(jq -c 'select(.type=="update") | [.relation, .new.v]' "$T/c1.json")" '["public.pt_2","c"]' \
	"the update through the parent is stored for its leaf"
like "$("$RESTORE" ls --store "$S1")" "base: consistent at $(jq -r '.slot_lsn' "$S1/logship.json")," \
	"logship.json records the slot's creation LSN"

out=$("$AGENT" --source "$SRC" --store "$S1" --init --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 0 "--init on an existing store just goes on"
like "$out" "store $S1 already exists \(generation $GEN\); --init has nothing to do" "saying so"

# ---- B: a mistyped store must not steal the slot ----------------------------
psql_at "$P" -c "INSERT INTO t VALUES (2, 'while stopped')" >/dev/null
before=$(slot_confirmed)
out=$("$AGENT" --source "$SRC" --store "$T/s2" --init 2>&1); rc=$?
is "$rc" 1 "a fresh store whose slot name exists is refused (exit 1)"
like "$out" "REFUSING SLOT: replication slot logship already exists on the source but store $T/s2 is new, so it belongs to something else.*another --slot.*SELECT pg_drop_replication_slot\('logship'\)" \
	"loudly, naming the slot and the fixes"
is "$(printf '%s\n' "$out" | grep -c 'REFUSING')" 1 "in one line"
is "$(nslots)" 1 "the slot was not dropped"
is "$(slot_confirmed)" "$before" "and did not move"
is "$(find "$T/s2" -type f 2>/dev/null | wc -l | tr -d ' ')" 0 "the refused store holds no object"
out=$("$AGENT" --source "$SRC" --store "$S1" --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 0 "the rightful agent resumes"
"$RESTORE" cat --store "$S1" > "$T/c2.json" 2>/dev/null
is "$(jq -r 'select(.type=="insert" and .relation=="public.t") | .new.v' "$T/c2.json" | tail -n 1)" \
	"while stopped" "and stores the transaction committed while it was stopped"

# ---- B: idle confirmations past the store's end resume fine -----------------
: > "$T/idle.log"
"$AGENT" --source "$SRC" --store "$S1" --flush-interval 0.2 >> "$T/idle.log" 2>&1 &
A=$!; track_pid $A
wait_log "$T/idle.log" "streaming generation"; ok $? "the agent streams again"
i=0; while [ $i -lt 13 ]; do	# WAL the slot skips: another database
	psql_at_db "$P" other -c "INSERT INTO noise (v) SELECT 'x' FROM generate_series(1, 100)" >/dev/null
	sleep 1; i=$((i+1))
done
first=$(cat "$S1/$GEN.confirmed" 2>/dev/null)
sleep 11
kill -TERM $A; wait $A; is "$?" 0 "stops after idling longer than the status interval"
c=$(slot_confirmed); e=$(last_end "$S1")
lsn_gt "$c" "$e"; ok $? "the slot confirmed idle positions past the last transaction ($c > $e)"
test -n "$first" && lsn_gt "$(cat "$S1/$GEN.confirmed")" "$first"
ok $? "$GEN.confirmed was advanced while idle ($first, then $(cat "$S1/$GEN.confirmed"))"
lsn_gt "$c" "$(cat "$S1/$GEN.confirmed")"; ok $(( ! $? )) "the slot is never ahead of $GEN.confirmed"
out=$("$AGENT" --source "$SRC" --store "$S1" --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 0 "a restart after idle confirmations resumes"

# ---- B: another consumer took changes: stop loudly --------------------------
psql_at "$P" -c "INSERT INTO t VALUES (3, 'stolen')" >/dev/null
psql_at "$P" -c "SELECT count(*) FROM pg_logical_slot_get_binary_changes('logship', NULL, NULL,
	'proto_version', '1', 'publication_names', 'logship')" >/dev/null
ok $? "another consumer advances the slot"
stolen=$(slot_confirmed)
out=$("$AGENT" --source "$SRC" --store "$S1" --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 1 "the agent whose store ends before the slot exits 1"
like "$out" "CHANGES LOST: replication slot logship has confirmed up to $stolen but store $S1 ends at [0-9A-F]+/[0-9A-F]+: another client consumed the changes between them.*not in this store.*pg_drop_replication_slot\('logship'\)" \
	"loudly, naming the slot, both LSNs and the fix"
is "$(nslots)" 1 "the slot is left alone"
psql_at "$P" -c "SELECT pg_drop_replication_slot('logship')" >/dev/null
out=$("$AGENT" --source "$SRC" --store "$S1" --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 0 "after dropping the slot the agent goes on"
like "$out" "GENERATION CHANGE.*starting generation 0000000000000002" "in a new generation with a new base"
check "the store verifies" "$RESTORE" verify --store "$S1"

# ---- B: a base-less generation's own slot is redone -------------------------
printf '#!/bin/sh\necho "pg_dump: simulated failure" >&2\nexit 1\n' > "$T/pg_dump"
chmod +x "$T/pg_dump"
out=$(LOGSHIP_PG_DUMP="$T/pg_dump" "$AGENT" --source "$SRC" --store "$T/s3" --init --slot s3 2>&1); rc=$?
is "$rc" 1 "a failed base snapshot exits 1"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots where slot_name = 's3'")" 1 "leaving its slot"
out=$("$AGENT" --source "$SRC" --store "$T/s3" --slot s3 --endpos "$(lsn_now)" 2>&1); rc=$?
is "$rc" 0 "the next run redoes the base"
like "$out" "warn.*dropping replication slot s3 \(created at [0-9A-F/]+, nothing confirmed since\) and redoing the base snapshot" \
	"dropping its own unused slot, with a warning"

done_testing
