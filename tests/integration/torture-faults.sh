#!/bin/sh
# Faults from every side (issue 14), under a steady workload whose every
# transaction inserts its own number into the key-less table hist:
#  - source: the agent's connections cut by a TCP proxy (faultproxy
#    SIGUSR1) and silenced by it (SIGUSR2, a black hole); PostgreSQL
#    restarted with -m fast and -m immediate mid-base and mid-stream; the
#    slot dropped by an operator; the slot invalidated by
#    max_slot_wal_keep_size (1MB) while the agent is stalled (SIGSTOP):
#    the agent says so on one line and starts a new generation, a restore
#    of the old one stops at its end saying what to do;
#  - target: a lock held past the target's lock_timeout (the restore waits
#    it out, its session's timeouts being 0); the target's disk
#    full (a tablespace on a small tmpfs), then space given back;
#  - local disk full: the agent's spool dir on a 2 MB tmpfs under a 5 MB
#    streamed transaction (one clear line, the slot confirms nothing the
#    store lacks, all stored once the tmpfs is remounted larger); a remap
#    restore's state dir on a 1 MB tmpfs (one clear line, the target holds
#    exactly what its marker says, an exact resume from a copy of the state
#    dir on a larger filesystem);
# each time: a clear error or a reconnection, and in the end the target
# equals the source with every transaction applied exactly once.  The
# tmpfs checks need root (mount); without it they are skipped.
# Sized by TORTURE_FAULT_ROUNDS (default 1: each fault once; make
# check-torture: 3); the silent network (the agent notices after 60 s) only
# with TORTURE_FAULT_SILENT=1 (make check-torture).
. "$(dirname "$0")/lib.sh"

ROUNDS=${TORTURE_FAULT_ROUNDS:-1}
SILENT=${TORTURE_FAULT_SILENT:-0}
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
[ -x "$FAULTPROXY" ] || skip_all "tests/tools/faultproxy is not built"
can_mount=0
if [ "$(id -u)" -eq 0 ] && mkdir -p "$T/m" && mount -t tmpfs -o size=1m tmpfs "$T/m" 2>/dev/null; then
	umount "$T/m"; can_mount=1
fi
MOUNTS=""
cleanup_mounts() { for m in $MOUNTS; do umount -l "$m" 2>/dev/null; done; }
trap 'cleanup_mounts; cleanup' EXIT
small_fs() {	# small_fs DIR SIZE: a tmpfs of SIZE at DIR, owned by postgres
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" && MOUNTS="$1 $MOUNTS" &&
		chown postgres: "$1"
}
private_fs() {	# private_fs DIR SIZE: a tmpfs of SIZE at DIR, ours alone (0700)
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" && MOUNTS="$1 $MOUNTS"
}

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
psql_at "$P" -c "ALTER SYSTEM SET max_prepared_transactions = 4" \
	-c "ALTER SYSTEM SET wal_sender_timeout = '10s'" \
	-c "ALTER SYSTEM SET logical_decoding_work_mem = '64kB'" >/dev/null
pg_as "$PG_BINDIR/pg_ctl" -D "$src_DIR/data" -l "$src_DIR/log" -w restart >/dev/null
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, pad text);
CREATE TABLE hist (txn bigint NOT NULL);
ALTER TABLE hist REPLICA IDENTITY FULL;
CREATE TABLE ids (id bigserial PRIMARY KEY, txn bigint NOT NULL, v text NOT NULL);
INSERT INTO acct SELECT g, 0, repeat('p', 200) FROM generate_series(1, 100000) g;
SQL

"$FAULTPROXY" --upstream "127.0.0.1:$P" > "$T/proxy.port" 2> "$T/proxy.log" &
PROXY=$!; track_pid $PROXY
i=0; until [ -s "$T/proxy.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
SRC="host=127.0.0.1 port=$(head -n 1 "$T/proxy.port") user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"

# the workload: one numbered transaction at a time until $T/stop
workload() {
	n=1
	while [ ! -e "$T/stop" ]; do
		psql_at "$P" -c "BEGIN; INSERT INTO hist VALUES ($n);
			UPDATE acct SET bal = bal + 1 WHERE id % 1000 = $((n % 1000)); COMMIT" >/dev/null 2>&1
		n=$((n + 1)); sleep 0.02
	done
}
# The agent and the restore run as systemd runs them (contrib/systemd:
# Restart=on-failure, not after exit 2): restarted after an error exit,
# which is counted with its last error line in $T/NAME.exits.
supervise() {	# supervise NAME COMMAND...: until $T/stop.NAME
	while [ ! -e "$T/stop.$1" ]; do
		"$@" >> "$T/$1.log" 2>&1 &
		echo $! > "$T/$1.pid"; wait $!; _rc=$?
		[ $_rc -eq 0 ] && break
		echo "exit $_rc: $(grep -E ' (error|fatal) ' "$T/$1.log" | tail -n 1 | cut -c 29- | cut -c 1-250)" >> "$T/$1.exits"
		[ $_rc -eq 2 ] && break
		sleep 1
	done
}
agent() { shift; exec "$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 --spool-dir "$SPOOL"; }
restore() { shift; exec "$RESTORE" --store "$S" --target "$DST" --state-dir "$STATE" --follow --batch-txns 10; }
agent_bg() { supervise agent agent & ASUP=$!; track_pid $ASUP; }
restore_bg() { supervise restore restore & RSUP=$!; track_pid $RSUP; }
stop_sup() {	# stop_sup NAME SUPPID: SIGTERM the program, wait for its supervisor
	touch "$T/stop.$1"; kill -TERM "$(cat "$T/$1.pid")" 2>/dev/null; wait "$2"; rm -f "$T/stop.$1"
}
nexits() { [ -e "$T/$1.exits" ] && wc -l < "$T/$1.exits" | tr -d ' ' || echo 0; }
streaming() { lines "$T/agent.log" "streaming generation"; }
# back_streaming BEFORE SECONDS: the agent logged another "streaming" line
back_streaming() {
	_i=0; while [ "$(streaming)" -le "$1" ] && [ $_i -lt $(($2 * 10)) ]; do sleep 0.1; _i=$((_i+1)); done
	WAITED=$((_i / 10)); [ "$(streaming)" -gt "$1" ]
}
# how NAME EXITS-BEFORE: "by itself" or the error of the exit it restarted after
how() { if [ "$(nexits "$1")" -gt "$2" ]; then echo "after exiting: $(tail -n 1 "$T/$1.exits")"; else echo "reconnecting by itself"; fi; }
wait_log() {	# wait_log FILE ERE SECONDS
	_i=0; while ! grep -Eq "$2" "$1" && [ $_i -lt $(($3 * 10)) ]; do sleep 0.1; _i=$((_i+1)); done
	grep -Eq "$2" "$1"
}
lines() { grep -Ec "$2" "$1"; }
src_bounce() {	# src_bounce MODE
	pg_as "$PG_BINDIR/pg_ctl" -D "$src_DIR/data" -l "$src_DIR/log" -m "$1" -w restart >/dev/null
}
stored_txns() { "$RESTORE" cat --store "$S" 2>/dev/null | jq -r 'select(.type=="insert" and .relation=="public.hist") | .new.txn' | sort -n; }
# stored_end GEN: the end of what the store holds for generation GEN: its
# last transaction's end LSN, or the idle position the agent recorded there
stored_end() {
	_t=$("$RESTORE" cat --store "$S" 2>/dev/null | jq -r 'select(.type=="commit") | .end_lsn' | tail -n 1)
	_c=$(cat "$S/$1.confirmed" 2>/dev/null)
	psql_at "$P" -c "select greatest('${_t:-0/0}'::pg_lsn, '${_c:-0/0}'::pg_lsn)"
}
# hist_lsns: "end-lsn<TAB>number" for each hist row the store holds, the
# end LSN being its transaction's
hist_lsns() {
	"$RESTORE" cat --store "$S" 2>/dev/null | jq -r 'if .type == "begin" then "B \(.end_lsn)"
		elif .type == "insert" and .relation == "public.hist" then "H \(.new.txn)" else empty end' |
		awk '$1 == "B" { l = $2; next } { print l "\t" $2 }'
}
wait_sql() {	# wait_sql PORT DB SQL SECONDS: until SQL answers t
	_i=0; until [ "$(psql_at_db "$1" "$2" -c "$3")" = t ] || [ $_i -ge $(($4 * 10)) ]; do sleep 0.1; _i=$((_i+1)); done
	WAITED=$((_i / 10)); [ "$(psql_at_db "$1" "$2" -c "$3")" = t ]
}

SPOOL="$T/spool"; STATE="$T/state"; mkdir -m 700 -p "$SPOOL"	# 0700: a spool dir others can read is refused
: > "$T/agent.log"; : > "$T/restore.log"

# ---- mid-base: the source restarted under the base snapshot -----------------
agent_bg
wait_log "$T/agent.log" "copying|copied|base" 30
src_bounce immediate
wait_log "$T/agent.log" "streaming generation" 120; ok $? "source restarted -m immediate mid-base: the agent streams ($(how agent 0))"
workload & WPID=$!; track_pid $WPID
restore_bg

r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	# ---- the connection cut by the network ------------------------------
	b=$(streaming); e=$(nexits agent); sleep 2; kill -USR1 $PROXY
	back_streaming "$b" 30; ok $? "round $r: connections cut by the proxy: the agent streams again in $WAITED s ($(how agent "$e"))"
	# ---- the network goes silent (no reset, no FIN): 60 s to notice -------
	if [ "$SILENT" = 1 ]; then
		b=$(streaming); e=$(nexits agent); sleep 2; kill -USR2 $PROXY
		back_streaming "$b" 120; ok $? "round $r: a silent network: the agent streams again in $WAITED s, limit 120 ($(how agent "$e"))"
		grep -E "connection is dead" "$T/agent.log" | tail -n 1 | cut -c 29- | sed 's/^/#   /'
	fi
	# ---- PostgreSQL restarted mid-stream ---------------------------------
	for mode in fast immediate; do
		b=$(streaming); e=$(nexits agent); sleep 2; src_bounce $mode
		back_streaming "$b" 60; ok $? "round $r: source restarted -m $mode mid-stream: the agent streams again in $WAITED s ($(how agent "$e"))"
	done
	# ---- the target: a lock past lock_timeout, then its disk full --------
	psql_at "$Q" -c "ALTER DATABASE postgres SET lock_timeout = '1s'" >/dev/null
	stop_sup restore $RSUP; restore_bg; e=$(nexits restore)
	( psql_at "$Q" -c "SET lock_timeout = 0" -c "BEGIN; LOCK TABLE acct; SELECT pg_sleep(6); COMMIT" >/dev/null 2>&1 ) &
	sleep 1; psql_at "$P" -c "UPDATE acct SET bal = bal + 1 WHERE id = 1" >/dev/null
	sleep 7
	psql_at "$Q" -c "ALTER DATABASE postgres RESET lock_timeout" >/dev/null
	# the restore's session sets lock_timeout and statement_timeout to 0,
	# as PostgreSQL's apply worker: it waits the lock out, then applies
	want=$(psql_at "$P" -c "select bal from acct where id = 1")
	got() { psql_at "$Q" -c "select bal >= $want from acct where id = 1"; }
	i=0; while [ "$(got)" != t ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	is "$(got)" t \
		"round $r: a lock held 6 s on the target past its lock_timeout of 1 s: the restore waits it out and applies ($(how restore "$e"))"
done

if [ $can_mount = 1 ]; then
	small_fs "$T/ts" 64m
	psql_at "$Q" -c "CREATE TABLESPACE tiny LOCATION '$T/ts'" -c "ALTER TABLE acct SET TABLESPACE tiny" >/dev/null
	# leave 512 kB: 30000 updated rows of acct do not fit
	avail=$(df --output=avail -k "$T/ts" | tail -n 1)
	dd if=/dev/zero of="$T/ts/filler" bs=1k count=$((avail - 512)) 2>/dev/null
	psql_at "$P" -c "UPDATE acct SET bal = bal + 1, pad = repeat('q', 200) WHERE id <= 30000" >/dev/null
	e=$(nexits restore)
	wait_log "$T/restore.log" "No space left on device|could not extend" 60
	ok $? "target disk full: the restore says so ($(how restore "$e"))"
	grep -E "No space left|could not extend" "$T/restore.log" | tail -n 1 | cut -c 29- | cut -c 1-300 | sed 's/^/#   /'
	rm -f "$T/ts/filler"

	# ---- local disk full: the agent's spool dir --------------------------
	# a 2 MB spool dir and a 20,000-row transaction (about 5 MB of changes,
	# streamed in chunks: logical_decoding_work_mem is 64kB) that the agent
	# spills past 4 MiB: it cannot be stored until the spool has room
	t0=$(date +%s)
	stop_sup agent $ASUP
	SMALL="$T/spool-small"; private_fs "$SMALL" 2m; SPOOL=$SMALL
	b=$(streaming); agent_bg; back_streaming "$b" 60
	nfull=$(lines "$T/agent.log" "LOCAL DISK FULL")
	BIGLSN=$(psql_at "$P" -c "BEGIN" -c "INSERT INTO hist VALUES (-10)" \
		-c "UPDATE acct SET pad = repeat('s', 200) WHERE id <= 20000" \
		-c "SELECT pg_current_wal_insert_lsn()" -c "COMMIT")
	i=0; while [ "$(lines "$T/agent.log" "LOCAL DISK FULL")" -le "$nfull" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
	line=$(grep "LOCAL DISK FULL" "$T/agent.log" | tail -n 1 | cut -c 29-)
	like "$line" "LOCAL DISK FULL: .*No space left on device.* spool dir $SMALL .*point --spool-dir at a larger filesystem" \
		"spool dir full: the agent names the directory, the cause and the fix on one line"
	printf '%s\n' "$line" | cut -c 1-400 | sed 's/^/#   /'
	sleep 2		# more tries and status updates: still nothing confirmed past the store
	conf=$(psql_at "$P" -c "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'logship'")
	held=$(stored_end 0000000000000001)
	is "$(psql_at "$P" -c "select '$conf'::pg_lsn <= '$held'::pg_lsn and '$conf'::pg_lsn < '$BIGLSN'::pg_lsn")" t \
		"spool dir full: the slot confirmed $conf, not past what the store holds ($held) nor the big transaction ($BIGLSN)"
	is "$(stored_txns | grep -c -- '^-10$')" 0 "spool dir full: the big transaction is not in the store"
	mount -o remount,size=64m "$SMALL"
	wait_sql "$Q" postgres "select count(*) = 1 from hist where txn = -10" 90
	ok $? "spool dir given room (remounted at 64 MB): the agent stores the big transaction by itself and the restore applies it ($WAITED s; $(($(lines "$T/agent.log" "LOCAL DISK FULL") - nfull)) failed tries)"
	diag "spool dir full: $(($(date +%s) - t0)) s"
else
	ok 0 "# SKIP target disk full: cannot mount a tmpfs here (needs root and mount rights)"
	ok 0 "# SKIP spool dir full: cannot mount a tmpfs here (needs root and mount rights)"
fi

# ---- 150 transactions for the state dir test below: 100 rows each into ids
# (its key has a default: a remap restore maps each row in LMDB) and an
# update of the previous transaction's rows (which needs their map entries)
i=1; while [ $i -le 150 ]; do
	echo "BEGIN; INSERT INTO ids (txn, v) SELECT $i, g::text FROM generate_series(1, 100) g;
		UPDATE ids SET v = v || 'u' WHERE txn = $((i - 1)); INSERT INTO hist VALUES ($((-1000 - i))); COMMIT;"
	i=$((i + 1))
done | psql_at "$P" >/dev/null

# ---- the end of the faults: everything there, once ------------------------
touch "$T/stop"; wait $WPID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
stop_sup agent $ASUP
"$AGENT" --source "$SRC" --store "$S" --spool-dir "$SPOOL" --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "the agent stores everything up to $END"
stop_sup restore $RSUP
"$RESTORE" --store "$S" --target "$DST" --state-dir "$STATE" >> "$T/restore.log" 2>&1
is "$?" 0 "the final catch-up exits 0"
check "after the faults the target equals the source" same_data "$P" "$Q"
ntx=$(psql_at "$P" -c "select count(*) from hist")
is "$(psql_at "$Q" -c "select count(*) || ' ' || count(distinct txn) from hist")" "$ntx $ntx" \
	"each of the $ntx source transactions applied exactly once"
echo "faults: rounds=$ROUNDS silent_network=$SILENT txns=$ntx agent_error_exits=$(nexits agent) restore_error_exits=$(nexits restore) failures=$_failed" >> "${TORTURE_SUMMARY:-/dev/null}"
diag "agent exits: $(cat "$T/agent.exits" 2>/dev/null | tr '\n' '|')"
diag "restore exits: $(cat "$T/restore.exits" 2>/dev/null | tr '\n' '|')"

# ---- local disk full: the restore's state dir (LMDB) -----------------------
# A remap restore of the whole store into a new database, its state dir on
# a 1 MB tmpfs: the ID map of ids (15,000 rows) does not fit.
if [ $can_mount = 1 ]; then
	t0=$(date +%s)
	psql_at "$Q" -c "CREATE DATABASE remapdb" >/dev/null
	RDST="host=127.0.0.1 port=$Q user=postgres dbname=remapdb"
	RST="$T/state-small"; private_fs "$RST" 1m
	out=$("$RESTORE" --store "$S" --target "$RDST" --state-dir "$RST" --id-mode remap --batch-txns 10 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | grep -E " error " | tail -n 1 | cut -c 29-)
	is "$rc" 1 "state dir full (a 1 MB tmpfs, --id-mode remap): the restore exits 1"
	like "$line" "LOCAL DISK FULL: state dir $RST: .*No space left on device.*larger one \(--state-dir\)" \
		"state dir full: the restore names the directory, the cause and the fix on one line"
	printf '%s\n' "$line" | cut -c 1-400 | sed 's/^/#   /'
	# the target holds exactly the stored transactions up to its marker,
	# each once; LMDB's marker is not past the target's
	hist_lsns > "$T/hist-lsn.tsv"
	tm=$(psql_at_db "$Q" remapdb -c "select end_lsn from logship.applied")
	lm=$("$RESTORE" status --store "$S" --state-dir "$RST" --format json 2>/dev/null | jq -r '.applied_lsn // "0/0"')
	got=$(psql_at_db "$Q" remapdb <<SQL
CREATE TEMP TABLE s (lsn pg_lsn, txn bigint);
\copy s FROM '$T/hist-lsn.tsv'
SELECT (SELECT count(*) || ' ' || md5(string_agg(txn::text, ',' ORDER BY txn)) FROM s WHERE lsn <= '$tm') =
	(SELECT count(*) || ' ' || md5(string_agg(txn::text, ',' ORDER BY txn)) FROM hist)
	AND (SELECT count(*) FROM s) > (SELECT count(*) FROM hist) AND '$lm'::pg_lsn <= '$tm';
SQL
)
	is "$got" t "state dir full: the target holds exactly the $(psql_at_db "$Q" remapdb -c "select count(*) from hist") stored transactions up to its marker $tm, each once (LMDB's marker $lm)"
	# space back: the state dir copied whole to a larger filesystem
	cp -a "$RST" "$T/state-big"
	"$RESTORE" --store "$S" --target "$RDST" --state-dir "$T/state-big" --id-mode remap --batch-txns 10 >> "$T/remap.log" 2>&1
	is "$?" 0 "state dir copied to a larger filesystem: the rerun exits 0"
	is "$(psql_at_db "$Q" remapdb -c "select count(*) || ' ' || count(distinct txn) from hist")" "$ntx $ntx" \
		"state dir full, then resumed: each of the $ntx source transactions applied exactly once"
	ids_sum="select count(*) || ' ' || md5(string_agg(txn || ':' || v, ',' order by txn, v)) from ids"
	is "$(psql_at_db "$Q" remapdb -c "$ids_sum")" "$(psql_at "$P" -c "$ids_sum")" \
		"state dir full, then resumed: ids (new keys) holds the source's rows, with every update applied through the ID map"
	diag "state dir full: $(($(date +%s) - t0)) s"
else
	ok 0 "# SKIP state dir full: cannot mount a tmpfs here (needs root and mount rights)"
fi

# ---- the slot dropped by an operator ---------------------------------------
: > "$T/agent.exits"
agent_bg
wait_log "$T/agent.log" "streaming generation" 60
psql_at "$P" -c "INSERT INTO hist VALUES (-1)" >/dev/null
sleep 1
psql_at "$P" -c "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = 'logship'" \
	-c "select pg_sleep(0.2)" -c "select pg_drop_replication_slot('logship')" >/dev/null 2>&1
diag "an operator dropped the slot (psql exit $?)"
psql_at "$P" -c "INSERT INTO hist VALUES (-2)" >/dev/null
wait_log "$T/agent.log" "GENERATION CHANGE|CHANGES LOST" 60
ok $? "slot dropped: the agent says so loudly"
grep -E "GENERATION CHANGE|CHANGES LOST" "$T/agent.log" | head -n 2 | cut -c 29- | cut -c 1-400 | sed 's/^/#   /'
sleep 3
out=$("$RESTORE" --store "$S" --target "$DST" --state-dir "$STATE" 2>&1); rc=$?
diag "a restore of the old target after the slot was dropped: exit $rc"
printf '%s\n' "$out" | grep -E "error|warn" | cut -c 29- | cut -c 1-400 | sed 's/^/#   /'
like "$out" "generation" "and a restore of the old target names the generation change"

# ---- the slot invalidated by max_slot_wal_keep_size -------------------------
t0=$(date +%s)
# Generation 2 restored into a new database; then the agent stalls
# (SIGSTOP) while the source writes past max_slot_wal_keep_size (1MB: less
# than one WAL segment) and checkpoints, until the slot's WAL is removed.
G2="host=127.0.0.1 port=$Q user=postgres dbname=gen2db"
wait_log "$T/agent.log" "streaming generation 0000000000000002" 120
psql_at "$Q" -c "CREATE DATABASE gen2db" >/dev/null
"$RESTORE" --store "$S" --target "$G2" --state-dir "$T/state-g2" >> "$T/g2.log" 2>&1
ok $? "generation 2 restored into a new database"
psql_at "$P" -c "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'" -c "SELECT pg_reload_conf()" >/dev/null
kill -STOP "$(cat "$T/agent.pid")"
psql_at "$P" -c "INSERT INTO hist VALUES (-3)" >/dev/null
i=0; while [ "$(psql_at "$P" -c "select wal_status from pg_replication_slots where slot_name = 'logship'")" != lost ] && [ $i -lt 20 ]; do
	psql_at "$P" -c "INSERT INTO hist VALUES (-4)" -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
	i=$((i + 1))
done
is "$(psql_at "$P" -c "select wal_status from pg_replication_slots where slot_name = 'logship'")" lost \
	"the stalled agent's slot is invalidated by max_slot_wal_keep_size ($i WAL switches and checkpoints)"
kill -CONT "$(cat "$T/agent.pid")"
wait_log "$T/agent.log" "GENERATION CHANGE: .* invalidated" 60
line=$(grep -E "GENERATION CHANGE: .* invalidated" "$T/agent.log" | tail -n 1 | cut -c 29-)
like "$line" "max_slot_wal_keep_size = 1MB.*missing from generation 0000000000000002.*starting generation 0000000000000003.*new, empty database with a new --state-dir.*raise max_slot_wal_keep_size" \
	"slot invalidated: the agent says on one line what happened, what is missing and what to do"
printf '%s\n' "$line" | cut -c 1-500 | sed 's/^/#   /'
wait_log "$T/agent.log" "streaming generation 0000000000000003" 120
ok $? "slot invalidated: the agent streams generation 3 from a new base"
out=$("$RESTORE" --store "$S" --target "$G2" --state-dir "$T/state-g2" 2>&1); rc=$?
printf '%s\n' "$out" | grep -E " error " | cut -c 29- | cut -c 1-400 | sed 's/^/#   /'
ok $([ $rc -ne 0 ] && printf '%s\n' "$out" | grep -Eq "generation 0000000000000002 ends at .*not in it.*new, empty database with a new --state-dir"; echo $?) \
	"slot invalidated: a restore of generation 2 exits $rc, saying where it ends, that later changes are not in it and what to do"
# of what was written while the agent stalled, the target holds exactly what
# generation 2 stored (the walsender may have sent some before it was ended)
g2=$("$RESTORE" cat --store "$S" --generation 0000000000000002 2>/dev/null |
	jq -r 'select(.type == "insert" and .relation == "public.hist") | .new.txn | tonumber | select(. == -3 or . == -4)' | sort -n | tr '\n' ' ')
is "$(psql_at_db "$Q" gen2db -c "select generation from logship.applied") $(psql_at_db "$Q" gen2db -c "select txn from hist where txn in (-3, -4) order by 1" | tr '\n' ' ')" \
	"0000000000000002 $g2" "slot invalidated: that target stays in generation 2 and holds what it stored of the stall, nothing more"
diag "slot invalidated: $(($(date +%s) - t0)) s"
psql_at "$P" -c "ALTER SYSTEM RESET max_slot_wal_keep_size" -c "SELECT pg_reload_conf()" >/dev/null
stop_sup agent $ASUP
[ -n "${TORTURE_LOGDIR:-}" ] && mkdir -p "$TORTURE_LOGDIR" && cp "$T"/*.log "$T"/*.exits "$TORTURE_LOGDIR/" 2>/dev/null
done_testing
