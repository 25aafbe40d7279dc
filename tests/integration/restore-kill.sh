#!/bin/sh
# kill -9 logship-restore at random moments (and, by fault injection, right
# between the target commit and the LMDB commit), restart each time: the
# target ends equal to the source with no row applied twice.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 2 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 4 -T 6 postgres >/dev/null 2>&1
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "the store holds the workload"

restore() {	# restore [ENV=VALUE]: one run into the target, logging
	env "$@" "$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" \
	    --batch-txns 1 --jobs 2 >> "$T/restore.log" 2>&1
}
restore_bg() {	# the same in the background; RP is the restore's own pid
	# one connection: a commit per source transaction keeps the restore
	# slow enough for the random kills to land (parallel apply commits a
	# segment at a time and finished the backlog between two kills;
	# parallel.sh and torture.sh kill it at random)
	( exec "$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" \
	    --batch-txns 1 --jobs 2 --apply-workers 1 >> "$T/restore.log" 2>&1 ) &
	RP=$!
	track_pid $RP
}

# two runs killed by injection between the target and the LMDB commits
restore LOGSHIP_CRASHPOINT=restore-after-target-commit:3; rc1=$?
restore LOGSHIP_CRASHPOINT=restore-after-target-commit:7; rc2=$?
is "$rc1 $rc2" "137 137" "two runs died right after a target commit, before LMDB's"
t_end=$(psql_at "$Q" -c "select end_lsn from logship.applied")
[ -n "$t_end" ]; ok $? "the target's marker moved ($t_end)"

kills=0; tries=0
while [ $kills -lt 6 ] && [ $tries -lt 20 ]; do
	tries=$((tries + 1))
	restore_bg
	sleep "0.$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))"
	if kill -9 $RP 2>/dev/null; then kills=$((kills + 1)); fi
	wait $RP 2>/dev/null
	diag "after kill $kills: marker at $(psql_at "$Q" -c "select phase || ' ' || end_lsn from logship.applied" 2>/dev/null)"
done
diag "killed the restore $kills times with SIGKILL"
[ "$kills" -ge 5 ]; ok $? "at least 5 random kills ($kills)"
grep -o "base: [0-9]* chunks loaded ([0-9]* already there)" "$T/restore.log" | head -n 3 | sed 's/^/# /'

restore; rc=$?
is "$rc" 0 "the last run completes"
table_sums "$P" > "$T/a"; table_sums "$Q" > "$T/b"
check "target equals source after the kills" sh -c "diff '$T/a' '$T/b'"
is "$(psql_at "$Q" -c "select count(*) from pgbench_history")" "$(psql_at "$P" -c "select count(*) from pgbench_history")" "no history row applied twice (the table has no key)"
is "$(psql_at "$Q" -c "select count(*) from logship.base_chunks")" "$(psql_at "$Q" -c "select count(distinct key) from logship.base_chunks")" "each base chunk recorded once"
restore; rc=$?
is "$rc" 0 "a further run is a no-op"
table_sums "$Q" > "$T/c"
check "and changes nothing" diff "$T/b" "$T/c"

done_testing
