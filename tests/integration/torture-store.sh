#!/bin/sh
# Store faults (issue 14): logship-agent -> faultproxy -> Swift (S3 API)
# under a steady workload whose every transaction inserts its own number
# into the key-less table hist, the source's wal_sender_timeout 5 s (a
# walsender cut a client that sends no reply for that long):
#  - the store down (every request answered 503, open ones cut) for
#    TORTURE_STORE_DOWN_SECONDS (default 15; make check-torture: 60);
#  - slow uploads: the proxy throttled to TORTURE_STORE_RATE bytes/s
#    (default 150000) while two transactions of 2 MB commit, so that a
#    segment's upload outlasts wal_sender_timeout;
# in both: the agent keeps its replication connection (no "terminating
# walsender process due to replication timeout" in the source's log, no
# reconnection), the slot's lag grows during the fault and recovers after
# it, and, sampled all along, the slot never confirms a transaction whose
# segment is not stored yet;
#  - crash point store-between-parts: the agent killed between the parts
#    of a multipart upload (parts of 5 MiB, a 6 MiB segment), restarted:
#    the segment is stored whole, the orphaned upload harms nothing; with
#    TORTURE_STORE_MP_ROWS=small (make check-torture) that transaction is
#    ~100,000 changes, which take the agent seconds to write into the
#    segment at their commit, and wal_sender_timeout is 2 s meanwhile: no
#    walsender timeout then either;
# then an --endpos catch-up, verify, a restore into a target: the target
# equals the source and hist holds every committed number exactly once.
# Figures (lag peak, recovery time, upload time) are printed as diag lines
# and, with TORTURE_SUMMARY set, appended there.
. "$(dirname "$0")/lib.sh"
START=$(date +%s)
phase() { diag "$(( $(date +%s) - START )) s: $*"; }

D=$(dirname "$0")
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
DOWN_S=${TORTURE_STORE_DOWN_SECONDS:-15}
RATE=${TORTURE_STORE_RATE:-150000}
MP_ROWS=${TORTURE_STORE_MP_ROWS:-big}
[ -f "$D/lib-swift.sh" ] || skip_all "tests/integration/lib-swift.sh (the Swift test server) is missing"
"$RESTORE" ls --store s3://x/y 2>&1 | grep -q "unknown URL scheme" &&
	skip_all "this logship-restore has no s3 backend (s3:// is an unknown URL scheme)"
[ -x "$FAULTPROXY" ] || skip_all "tests/tools/faultproxy is not built"
command -v jq >/dev/null || skip_all "no jq"
. "$D/lib-swift.sh"
swift_skip_unless_installed
swift_start || { echo "Bail out! Swift did not start"; exit 1; }
phase "Swift started"
swift_mb tstore >/dev/null || { echo "Bail out! cannot create the bucket"; exit 1; }

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
psql_at "$P" -c "ALTER SYSTEM SET wal_sender_timeout = '5s'" -c "SELECT pg_reload_conf()" >/dev/null
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE hist (txn bigint NOT NULL);
ALTER TABLE hist REPLICA IDENTITY FULL;
CREATE TABLE big (id bigserial PRIMARY KEY, pad text NOT NULL);
SQL
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S=s3://tstore/store
REGION=us-east-1
DIRECT="--s3-endpoint $S3_ENDPOINT --s3-region $REGION --s3-uri-style path"
UPSTREAM=${S3_ENDPOINT#http://}; UPSTREAM=${UPSTREAM%%/*}

: > "$T/mode"
"$FAULTPROXY" --upstream "$UPSTREAM" --mode-file "$T/mode" --rate "$RATE" \
	> "$T/proxy.port" 2> "$T/proxy.log" &
PROXY=$!; track_pid $PROXY
i=0; until [ -s "$T/proxy.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
FAULTY="--s3-endpoint http://127.0.0.1:$(head -n 1 "$T/proxy.port") --s3-region $REGION --s3-uri-style path"
proxy_mode() { echo "$1" > "$T/mode"; kill -HUP $PROXY; }

SPOOL="$T/spool"; mkdir -m 700 -p "$SPOOL"
# multipart above 5 MiB + 1, in parts of 5 MiB (Swift's minimum)
MP="env LOGSHIP_S3_MULTIPART_THRESHOLD=5242881 LOGSHIP_S3_PART_SIZE=5242880"
agent_start() {	# agent_start [ENV=VALUE...]: the agent through the proxy
	# shellcheck disable=SC2086
	$MP "$@" "$AGENT" --source "$SRC" --store "$S" --init $FAULTY \
		--flush-interval 0.5 --spool-dir "$SPOOL" >> "$T/agent.log" 2>&1 &
	APID=$!; track_pid $APID
}
wait_log() {	# wait_log FILE ERE SECONDS
	_i=0; while ! grep -Eq "$2" "$1" && [ $_i -lt $(($3 * 10)) ]; do sleep 0.1; _i=$((_i+1)); done
	grep -Eq "$2" "$1"
}
now() { date +%s.%N | cut -c 1-14; }
lsn_now() { psql_at "$P" -c "select pg_current_wal_lsn()"; }
confirmed() { psql_at "$P" -c "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'logship'"; }
lag_bytes() { psql_at "$P" -c "select coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
	from pg_replication_slots where slot_name = 'logship'"; }
# confirmed_reaches LSN SECONDS: 0 once the slot confirmed LSN; WAITED: seconds
confirmed_reaches() {
	_t0=$(now)
	while [ "$(psql_at "$P" -c "select confirmed_flush_lsn >= '$1' from pg_replication_slots where slot_name = 'logship'")" != t ]; do
		[ "$(awk -v a="$(now)" -v b="$_t0" 'BEGIN { print (a - b > '"$2"') }')" = 1 ] && { WAITED=-1; return 1; }
		sleep 0.2
	done
	WAITED=$(awk -v a="$(now)" -v b="$_t0" 'BEGIN { printf "%.1f", a - b }')
}
last_seg() {	# the highest stored segment number (hex), straight from Swift
	# shellcheck disable=SC2086
	"$RESTORE" ls --store "$S" $DIRECT 2>/dev/null |
		awk 'length($1) == 16 && $1 ~ /^[0-9a-f]+$/ { s = $1 } END { print s }'
}
timeouts() { grep -c "terminating walsender process due to replication timeout" "$src_DIR/log"; }
streams() { grep -c "streaming generation" "$T/agent.log"; }
summary() { diag "$*"; [ -n "${TORTURE_SUMMARY:-}" ] && echo "$*" >> "$TORTURE_SUMMARY"; return 0; }

# the workload: one numbered transaction at a time until $T/stop
workload() {
	n=1
	while [ ! -e "$T/stop" ]; do
		[ -e "$T/pause" ] && { sleep 0.1; continue; }
		psql_at "$P" -c "INSERT INTO hist VALUES ($n)" >/dev/null 2>&1 && echo "$n" >> "$T/committed"
		n=$((n + 1)); sleep 0.05
	done
}
# big_txn MB [small]: one transaction of MB megabytes of random hex
# (which compresses to about half), in rows of 64 kB, or with "small" in
# rows of 128 bytes (8192 changes a megabyte)
big_txn() {
	if [ "${2:-}" = small ]; then
		psql_at "$P" -c "INSERT INTO big (pad) SELECT md5(random()::text) || md5(random()::text) ||
			md5(random()::text) || md5(random()::text) FROM generate_series(1, $1 * 8192)" >/dev/null
	else
		psql_at "$P" -c "INSERT INTO big (pad) SELECT (SELECT string_agg(md5(random()::text || g || i), '')
			FROM generate_series(1, 2048) i) FROM generate_series(1, $1 * 16) g" >/dev/null
	fi
}

phase "PostgreSQL started"
agent_start
wait_log "$T/agent.log" "streaming generation" 60; ok $? "the agent streams through the proxy"
workload & WPID=$!; track_pid $WPID
# the sampler: "confirmed_flush_lsn last_segment lag_bytes" every 0.2 s
( while [ ! -e "$T/stop.sampler" ]; do
	c=$(psql_at "$P" -F ' ' -c "select confirmed_flush_lsn, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		from pg_replication_slots where slot_name = 'logship'")
	echo "${c% *} $(last_seg) ${c#* }"
	sleep 0.5
  done > "$T/samples" ) &
SPID=$!; track_pid $SPID
sleep 1

phase "the store goes down"
# ---- the store down -----------------------------------------------------------
t0=$(timeouts); s0=$(streams)
lag0=$(lag_bytes)
proxy_mode down
sleep "$DOWN_S"
lag_down=$(lag_bytes); end_lsn=$(lsn_now)
proxy_mode normal
kill -0 $APID 2>/dev/null; ok $? "store down ${DOWN_S} s: the agent runs on"
n503=$(grep -c "action=503" "$T/proxy.log")
[ "$n503" -ge 3 ]; ok $? "store down: the agent's requests were answered 503 ($n503) and retried"
[ "$lag_down" -gt "$lag0" ]; ok $? "store down: the slot's lag grew ($lag0 -> $lag_down bytes)"
confirmed_reaches "$end_lsn" 90; ok $? "store back: the slot confirms the outage's WAL (in $WAITED s)"
down_recovery=$WAITED
is "$(timeouts)" "$t0" "store down: no walsender timeout in the source's log"
is "$(streams)" "$s0" "store down: the agent never reconnected"

phase "slow uploads"
# ---- slow uploads ---------------------------------------------------------------
t0=$(timeouts); s0=$(streams)
lag0=$(lag_bytes)
from=$(wc -l < "$T/proxy.log")
proxy_mode slow
lag_slow=0
for k in 1 2; do
	big_txn 2
	sleep 2; l=$(lag_bytes); [ "$l" -gt "$lag_slow" ] && lag_slow=$l
done
end_lsn=$(lsn_now)
confirmed_reaches "$end_lsn" 90; slow_recovery=$WAITED
proxy_mode normal
# the uploads of more than 500 kB (the two big segments), as the proxy timed them
tail -n +"$((from + 1))" "$T/proxy.log" | sed -n 's/.* done up=\([0-9]*\) .* seconds=\([0-9.]*\)$/\1 \2/p' |
	awk '$1 > 500000 { print $2 }' > "$T/slow.uploads"
slowest=$(sort -n "$T/slow.uploads" | tail -n 1)
nslow=$(awk '$1 > 5' "$T/slow.uploads" | wc -l | tr -d ' ')
[ "$nslow" -ge 2 ]
ok $? "slow store ($RATE bytes/s): $nslow segment uploads outlasted wal_sender_timeout 5 s (slowest ${slowest:-none} s)"
[ "$lag_slow" -gt "$lag0" ]; ok $? "slow store: the slot's lag grew ($lag0 -> $lag_slow bytes)"
[ "$slow_recovery" != -1 ]; ok $? "slow store: the slot confirmed all of it ($slow_recovery s after the second big commit + 2 s)"
kill -0 $APID 2>/dev/null; ok $? "slow store: the agent runs on"
is "$(timeouts)" "$t0" "slow store: no walsender timeout in the source's log"
is "$(streams)" "$s0" "slow store: the agent never reconnected"
grep "terminating walsender" "$src_DIR/log" | head -n 3 | sed 's/^/# source log: /'

phase "a crash between parts"
# ---- a crash between the parts of a multipart upload ---------------------------
kill -TERM $APID; wait $APID; is "$?" 0 "SIGTERM: the agent exits 0"
# ~100,000 small changes: a walsender that hears nothing for 2 s gives up
[ "$MP_ROWS" = small ] && psql_at "$P" -c "ALTER SYSTEM SET wal_sender_timeout = '2s'" -c "SELECT pg_reload_conf()" >/dev/null
touch "$T/pause"; sleep 0.5; s0=$(streams)
agent_start LOGSHIP_CRASHPOINT=store-between-parts:1
_i=0; until [ "$(streams)" -gt "$s0" ] || [ $_i -gt 600 ]; do sleep 0.1; _i=$((_i+1)); done
sleep 1; before=$(last_seg)
big_txn 12 "$MP_ROWS"
wait $APID; rc=$?
is "$rc" 137 "crash point store-between-parts:1: the agent killed mid-multipart (exit $rc)"
is "$(last_seg)" "$before" "no segment stored by the killed upload"
agent_start
_i=0; while [ "$(last_seg)" = "$before" ] && [ $_i -lt 600 ]; do sleep 0.1; _i=$((_i+1)); done
[ "$(last_seg)" != "$before" ]; ok $? "restarted: the big segment is stored (segment $(last_seg))"
psql_at "$P" -c "ALTER SYSTEM SET wal_sender_timeout = '5s'" -c "SELECT pg_reload_conf()" >/dev/null
rm -f "$T/pause"

phase "catch-up and restore"
# ---- the end: everything stored, once, and the target equals the source --------
touch "$T/stop"; wait $WPID
touch "$T/stop.sampler"; wait $SPID
kill -TERM $APID; wait $APID; is "$?" 0 "SIGTERM: the agent exits 0"
END=$(lsn_now)
# shellcheck disable=SC2086
"$AGENT" --source "$SRC" --store "$S" $FAULTY --spool-dir "$SPOOL" --endpos "$END" >> "$T/agent.log" 2>&1
is "$?" 0 "--endpos $END: everything stored"
# shellcheck disable=SC2086
check "verify passes (the orphaned multipart upload harms nothing)" "$RESTORE" verify --store "$S" $DIRECT
# shellcheck disable=SC2086
"$RESTORE" --store "$S" $DIRECT --target "$DST" --state-dir "$T/state" > "$T/restore.log" 2>&1
ok $? "the restore applies the store" || tail -n 5 "$T/restore.log" | sed 's/^/# /'
same_data "$P" "$Q"; ok $? "the target equals the source" || head -n 10 "$T/sums.diff" | sed 's/^/# /'
ncommitted=$(sort -n "$T/committed" | uniq | wc -l | tr -d ' ')
psql_at "$Q" -c "select txn from hist order by 1" > "$T/hist.dst"
is "$(uniq -d "$T/hist.dst" | wc -l | tr -d ' ')" 0 "no transaction applied twice"
is "$(psql_at "$Q" -c "select count(distinct txn) from hist")" "$ncommitted" "every committed transaction applied ($ncommitted)"

# the confirmation rule, sampled all along (as in s3-faults.sh)
# shellcheck disable=SC2086
"$RESTORE" cat --store "$S" $DIRECT > "$T/all.json" 2>"$T/cat.err"
jq -r 'if .type=="header" then "H \(.segno)" elif .type=="commit" then "C \(.end_lsn)" else empty end' "$T/all.json" > "$T/txnseg"
nsamples=$(awk 'NF >= 2' "$T/samples" | wc -l | tr -d ' ')
[ "$nsamples" -ge 15 ]; ok $? "enough samples of confirmed_flush_lsn ($nsamples)"
bad=$(confirmed_early "$T/txnseg" "$T/samples")
is "$bad" "0" "the slot never confirmed a transaction before its segment was stored"
is "$(timeouts)" 0 "no walsender timeout in the whole run"
lag_peak=$(awk '$3 ~ /^[0-9]+$/ && $3 > m { m = $3 } END { print m + 0 }' "$T/samples")
summary "store faults: down_seconds=$DOWN_S down_recovery_s=$down_recovery rate=$RATE slowest_upload_s=$slowest slow_recovery_s=$slow_recovery lag_peak_bytes=$lag_peak walsender_timeouts=$(timeouts) txns=$ncommitted"
phase "done"
[ -n "${TORTURE_LOGDIR:-}" ] && mkdir -p "$TORTURE_LOGDIR" &&
	cp "$T"/*.log "$T/samples" "$TORTURE_LOGDIR/" && cp "$src_DIR/log" "$TORTURE_LOGDIR/source.log"

done_testing
