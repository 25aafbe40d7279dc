#!/bin/sh
# Faults from every side (issue 14), under a steady workload whose every
# transaction inserts its own number into the key-less table hist:
#  - source: the agent's connections cut by a TCP proxy (faultproxy
#    SIGUSR1) and silenced by it (SIGUSR2, a black hole); PostgreSQL
#    restarted with -m fast and -m immediate mid-base and mid-stream; the
#    slot dropped by an operator; the slot invalidated by
#    max_slot_wal_keep_size;
#  - target: a lock held past the target's lock_timeout (the restore waits
#    it out, its session's timeouts being 0); the target's disk
#    full (a tablespace on a small tmpfs), then space given back;
#  - local disk full: the agent's spool dir and the restore's state dir on
#    a small tmpfs;
# each time: a clear error or a reconnection, and in the end the target
# equals the source with every transaction applied exactly once.
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

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
psql_at "$P" -c "ALTER SYSTEM SET max_prepared_transactions = 4" \
	-c "ALTER SYSTEM SET wal_sender_timeout = '10s'" >/dev/null
pg_as "$PG_BINDIR/pg_ctl" -D "$src_DIR/data" -l "$src_DIR/log" -w restart >/dev/null
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, pad text);
CREATE TABLE hist (txn bigint NOT NULL);
ALTER TABLE hist REPLICA IDENTITY FULL;
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
else
	ok 0 "# SKIP target disk full: cannot mount a tmpfs here (needs root and mount rights)"
fi

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
stop_sup agent $ASUP
[ -n "${TORTURE_LOGDIR:-}" ] && mkdir -p "$TORTURE_LOGDIR" && cp "$T"/*.log "$T"/*.exits "$TORTURE_LOGDIR/" 2>/dev/null
done_testing
