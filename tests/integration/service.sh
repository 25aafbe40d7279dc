#!/bin/sh
# Running as systemd services (contrib/systemd):
#  - both unit templates pass systemd-analyze verify without a word, and
#    say Type=notify, a watchdog, no restart on exit 2, hardening
#  - the agent and a following restore speak sd_notify: READY=1 once the
#    agent streams / the restore follows, STATUS lines, WATCHDOG=1 while
#    they run, STOPPING=1 on SIGTERM; here to a socket this test listens on
#  - logship-restore --config FILE: the settings of a unit's config file,
#    bad lines named, exit 2 (which the units do not restart on)
. "$(dirname "$0")/lib.sh"

# the units, with the binaries of this build
mkdir -p "$T/bin" "$T/units"
ln -s "$AGENT" "$T/bin/logship-agent"
ln -s "$RESTORE" "$T/bin/logship-restore"
for u in agent restore; do
	sed "s|@bindir@|$T/bin|g" "$top_srcdir/contrib/systemd/logship-$u@.service.in" > "$T/units/logship-$u@.service"
	f="$T/units/logship-$u@.service"
	like "$(cat "$f")" "^Type=notify$" "$u unit: Type=notify"
	like "$(cat "$f")" "^WatchdogSec=" "$u unit: a watchdog"
	like "$(cat "$f")" "^Restart=on-failure$" "$u unit: restarted on failure"
	like "$(cat "$f")" "^RestartPreventExitStatus=2$" "$u unit: not restarted on exit 2 (bad configuration)"
	like "$(cat "$f")" "^ExecStart=$T/bin/logship-$u .*--config /etc/logship/%i.conf" "$u unit: the instance names the config file"
	for h in "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "ProtectHome=yes"; do
		like "$(cat "$f")" "^$h$" "$u unit: $h"
	done
done
like "$(cat "$top_builddir/contrib/systemd/logship-agent@.service" 2>&1)" "^ExecStart=/.*/logship-agent --config" \
    "the build makes the agent unit with the installed path (make install puts it in the unit dir)"
if command -v systemd-analyze >/dev/null 2>&1; then
	for u in agent restore; do
		out=$(cd "$T/units" && systemd-analyze verify --man=no "./logship-$u@test.service" 2>&1); rc=$?
		is "$rc" 0 "systemd-analyze verify logship-$u@.service: exit 0"
		is "$out" "" "systemd-analyze verify logship-$u@.service: no warning"
	done
else
	_n=$((_n + 1))
	echo "ok $_n # SKIP systemd-analyze is not installed: the units are not verified (apt-get install systemd)"
fi

command -v python3 >/dev/null 2>&1 || { diag "python3 is missing: no sd_notify listener"; done_testing; }

# listen NAME: a notify socket $T/NAME.sock; every message line into $T/NAME.log
listen() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        for line in s.recv(65536).decode().split("\n"):
            f.write(line + "\n")
' "$T/$1.sock" "$T/$1.log" &
	track_pid $!
	: > "$T/$1.log"
	i=0; until [ -S "$T/$1.sock" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
}
# wait_msg NAME PATTERN COUNT PID: until COUNT lines match, PID dies or 60 s
wait_msg() {
	i=0
	until [ "$(grep -c -- "$2" "$T/$1.log")" -ge "$3" ] || ! kill -0 "$4" 2>/dev/null ||
		[ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
}

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"
psql_at "$P" -c "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'base' FROM generate_series(1, 100) g" >/dev/null
psql_at "$Q" -c "create database standby" >/dev/null

# the agent: WATCHDOG_USEC of one second asks for a ping every half second
listen agent
cat > "$T/agent.conf" <<EOF
source = $SRC
store = $S
init = true
flush-interval = 200ms
EOF
NOTIFY_SOCKET="$T/agent.sock" WATCHDOG_USEC=1000000 "$AGENT" --config "$T/agent.conf" > "$T/agent.out" 2>&1 &
APID=$!; track_pid $APID
wait_msg agent '^READY=1$' 1 $APID
is "$(grep -c '^READY=1$' "$T/agent.log")" 1 "agent: READY=1 once"
first_wd=$(grep -n '^WATCHDOG=1$' "$T/agent.log" | head -n 1 | cut -d: -f1)
first_ready=$(grep -n '^READY=1$' "$T/agent.log" | head -n 1 | cut -d: -f1)
is "$([ -n "$first_wd" ] && [ "$first_wd" -lt "${first_ready:-0}" ] && echo yes)" yes \
    "agent: the watchdog is fed during the base snapshot, before READY=1"
like "$(grep -A1 '^READY=1$' "$T/agent.log")" "^STATUS=streaming generation 0000000000000001 from slot logship" "agent: READY=1 comes with a STATUS line, once it streams"
grep -q "streaming generation" "$T/agent.out"; ok $? "agent: it streams by then"
n=$(grep -c '^WATCHDOG=1$' "$T/agent.log")
wait_msg agent '^WATCHDOG=1$' $((n + 3)) $APID
is "$(( $(grep -c '^WATCHDOG=1$' "$T/agent.log") >= n + 3 ))" 1 "agent: WATCHDOG=1 keeps coming while it streams"

# the standby, from a config file as its unit gives it
listen restore
cat > "$T/restore.conf" <<EOF
# a standby
store = $S
target = 'host=127.0.0.1 port=$Q user=postgres dbname=standby'
state-dir = $T/state
batch-txns = 50
EOF
NOTIFY_SOCKET="$T/restore.sock" WATCHDOG_USEC=1000000 "$RESTORE" --follow --config "$T/restore.conf" > "$T/restore.out" 2>&1 &
RPID=$!; track_pid $RPID
wait_msg restore '^READY=1$' 1 $RPID
is "$(grep -c '^READY=1$' "$T/restore.log")" 1 "restore: READY=1 once"
like "$(grep -A1 '^READY=1$' "$T/restore.log")" "^STATUS=following store $S" "restore: READY=1 comes with a STATUS line, once it follows"
is "$(psql_at_db "$Q" standby -c "select phase & 15 from logship.applied")" 3 "restore: the base is loaded by then (phase STREAM)"
n=$(grep -c '^WATCHDOG=1$' "$T/restore.log")
wait_msg restore '^WATCHDOG=1$' $((n + 3)) $RPID
is "$(( $(grep -c '^WATCHDOG=1$' "$T/restore.log") >= n + 3 ))" 1 "restore: WATCHDOG=1 keeps coming while it follows"
psql_at "$P" -c "INSERT INTO t VALUES (101, 'streamed')" >/dev/null
wait_row "$Q" standby "select count(*) from t where id = 101" $RPID
wait_msg restore '^STATUS=caught up' 1 $RPID
like "$(cat "$T/restore.log")" "^STATUS=caught up: segment [0-9a-f]{16} applied" "restore: STATUS says it caught up"
like "$(cat "$T/agent.log")" "^STATUS=streaming generation 0000000000000001: segment [0-9a-f]{16} stored" "agent: STATUS names the last segment stored"

kill -TERM $RPID; wait $RPID
is "$?" 0 "restore: SIGTERM, exit 0"
like "$(cat "$T/restore.log")" "^STOPPING=1$" "restore: STOPPING=1"
kill -TERM $APID; wait $APID
is "$?" 0 "agent: SIGTERM, exit 0"
like "$(cat "$T/agent.log")" "^STOPPING=1$" "agent: STOPPING=1"
same_data "$P" "$Q" 2>/dev/null || true
is "$(psql_at_db "$Q" standby -c "select count(*) from t")" 101 "the standby has every row"

# without NOTIFY_SOCKET nothing is sent, and nothing breaks
"$AGENT" --config "$T/agent.conf" --endpos "$(psql_at "$P" -c 'select pg_current_wal_lsn()')" > "$T/plain.out" 2>&1
is "$?" 0 "agent outside systemd: runs as before"

# --config for the restore: bad lines named, exit 2; the command line wins
printf 'store = %s\nbatch-txns = 10 000\n' "$S" > "$T/bad.conf"
out=$("$RESTORE" --config "$T/bad.conf" --target x --state-dir "$T/s2" 2>&1); rc=$?
is "$rc" 2 "restore --config: a bad value, exit 2"
like "$out" "bad.conf:2: --batch-txns 10 000: expected a number" "... naming the line"
printf 'store = %s\ntarget-db = x\n' "$S" > "$T/bad.conf"
out=$("$RESTORE" --config "$T/bad.conf" 2>&1); rc=$?
is "$rc" 2 "restore --config: an unknown key, exit 2"
like "$out" "bad.conf:2: unknown setting \"target-db\"" "... naming it and the line"
printf 'store = %s\n' "$T/nowhere" > "$T/some.conf"
out=$("$RESTORE" --config "$T/some.conf" --store "$S" --target "host=127.0.0.1 port=$Q user=postgres dbname=standby" --state-dir "$T/state" 2>&1); rc=$?
is "$rc" 0 "restore --config: --store on the command line wins over the file"

done_testing
