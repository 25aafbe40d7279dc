#!/bin/sh
# The smaller defects of issue 12, each shown fixed:
#  - sizes and durations are strict in the config file and on the command
#    line ("64 MB", inf, 0x10, 1e3 refused, naming the line), exit 2
#  - no "sending a status update: no COPY in progress" after a fresh base
#    or at --endpos
#  - after --until-lsn / --until-time, logship.applied.commit_time is the
#    commit time of the last transaction applied, not of a later one read
#  - under --filter, a DELETE of a row the filter left out is no "diverged"
#    warning; a kept row missing on the target still is
#  - a target without the tables a filter excludes is restored into
. "$(dirname "$0")/lib.sh"

# strict values: no cluster needed, the check comes first
bad_conf() {	# bad_conf DESCRIPTION KEY VALUE PATTERN
	printf 'source = host=127.0.0.1\nstore = %s/none\n%s = %s\n' "$T" "$2" "$3" > "$T/bad.conf"
	out=$("$AGENT" --config "$T/bad.conf" 2>&1); rc=$?
	is "$rc" 2 "$1: exit 2"
	like "$out" "bad.conf:3: $2 = $3: expected a" "$1: the line, key and value named"
}
bad_conf "a size with a space" segment-max-bytes "64 MB" "64MB"
bad_conf "a size of inf" segment-max-bytes inf "64MB"
bad_conf "a size in hex" segment-max-bytes 0x10 "64MB"
bad_conf "a size with an exponent" segment-max-bytes 1e3 "64MB"
bad_conf "a duration with an exponent" flush-interval 1e3 "500ms"
bad_conf "a duration with a space" flush-interval "1 s" "500ms"
out=$("$AGENT" --source host=127.0.0.1 --store "$T/none" --segment-max-bytes inf 2>&1); rc=$?
is "$rc" 2 "--segment-max-bytes inf on the command line: exit 2"
like "$out" "command line: --segment-max-bytes inf: expected a size like 64MB" "... naming the option and the form"
like "$out" "no space" "... and the fix"
out=$("$AGENT" --source host=127.0.0.1 --store "$T/none" --jobs 0x2 2>&1); rc=$?
is "$rc" 2 "--jobs 0x2: exit 2 (digits only)"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
for db in until_lsn until_time filt; do psql_at "$Q" -c "create database $db" >/dev/null; done

psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, grp text, v int);
CREATE TABLE u (id int PRIMARY KEY, v int);
CREATE TABLE excl (id int PRIMARY KEY);
INSERT INTO t SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, g FROM generate_series(1, 20) g;
INSERT INTO u SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO excl SELECT generate_series(1, 5);
SQL

# a long flush interval: the whole workload lands in one segment, stored
# when SIGTERM stops the agent
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 60 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
for sql in "INSERT INTO t VALUES (21, 'a', 21)" "INSERT INTO excl VALUES (6)" \
    "UPDATE t SET v = v + 100 WHERE id = 2"; do psql_at "$P" -c "$sql"; done
sleep 1.1	# the transactions after the until point commit visibly later
for sql in "INSERT INTO t VALUES (22, 'b', 22)" "DELETE FROM t WHERE id = 3" \
    "DELETE FROM u WHERE id = 3" "DELETE FROM u WHERE id = 15" \
    "INSERT INTO t VALUES (23, 'a', 23)"; do psql_at "$P" -c "$sql"; done
last=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $APID; wait $APID
is "$?" 0 "the agent stored the workload"
"$AGENT" --source "$SRC" --store "$S" --endpos "$last" >> "$T/agent.log" 2>&1
is "$?" 0 "the agent exits 0 at --endpos"
is "$(grep -c 'no COPY in progress' "$T/agent.log")" 0 "no status-update warning after the fresh base or at --endpos"
grep 'warn' "$T/agent.log" | head -n 5 | sed 's/^/# /'

# the until point: the third streamed transaction, in a segment holding more
"$RESTORE" cat --store "$S" > "$T/all.json"
jq -r 'select(.type=="begin") | "\(.commit_lsn) \(.commit_time)"' "$T/all.json" > "$T/txns"
MID=$(sed -n 3p "$T/txns"); MID_LSN=${MID%% *}; MID_TIME=${MID#* }
LAST_TIME=$(tail -n 1 "$T/txns" | cut -d' ' -f2)
diag "until point $MID_LSN at $MID_TIME; the segment's last transaction at $LAST_TIME"
applied_time() {	# applied_time DB: logship.applied.commit_time as cat prints times
	psql_at_db "$Q" "$1" -c "select to_char(commit_time at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') from logship.applied"
}
"$RESTORE" --store "$S" --target "$(dst until_lsn)" --state-dir "$T/st-lsn" --until-lsn "$MID_LSN" > "$T/r-lsn.log" 2>&1
is "$?" 0 "--until-lsn exits 0"
is "$(applied_time until_lsn)" "$MID_TIME" "after --until-lsn, commit_time is that of the last transaction applied"
"$RESTORE" --store "$S" --target "$(dst until_time)" --state-dir "$T/st-time" --until-time "$MID_TIME" > "$T/r-time.log" 2>&1
is "$?" 0 "--until-time exits 0"
is "$(applied_time until_time)" "$MID_TIME" "after --until-time, commit_time is that of the last transaction applied"

# filters: the target has only the tables the filter keeps
cat > "$T/filter" <<'EOF'
exclude public.excl
table public.t
    where grp = 'a'
table public.u
    where id <= 10
EOF
psql_at_db "$Q" filt -c "CREATE TABLE t (id int PRIMARY KEY, grp text, v int); CREATE TABLE u (id int PRIMARY KEY, v int)" >/dev/null
"$RESTORE" --store "$S" --target "$(dst filt)" --state-dir "$T/st-filt" --filter "$T/filter" --until-lsn "$MID_LSN" > "$T/r-filt.log" 2>&1
is "$?" 0 "a filtered restore into a target without the excluded table exits 0"
grep -E 'error|warn' "$T/r-filt.log" | head -n 3 | sed 's/^/# /'
# a kept row goes missing on the target: its DELETE must still be reported
psql_at_db "$Q" filt -c "DELETE FROM u WHERE id = 3" >/dev/null
"$RESTORE" --store "$S" --target "$(dst filt)" --state-dir "$T/st-filt" --filter "$T/filter" > "$T/r-filt2.log" 2>&1
is "$?" 0 "the filtered restore completes"
like "$(cat "$T/r-filt2.log")" " 1 UPDATE/DELETE found no row on the target" \
    "exactly one missing row reported: the kept one, not the DELETE of a row the filter left out"
is "$(psql_at_db "$Q" filt -c "select string_agg(id || ':' || v, ',' order by id) from t")" \
   "$(psql_at "$P" -c "select string_agg(id || ':' || v, ',' order by id) from t where grp = 'a'")" "only the kept rows of t"
is "$(psql_at_db "$Q" filt -c "select string_agg(id::text, ',' order by id) from u")" \
   "$(psql_at "$P" -c "select string_agg(id::text, ',' order by id) from u where id <= 10")" "only the kept rows of u"
is "$(psql_at_db "$Q" filt -c "select count(*) from pg_tables where tablename = 'excl'")" 0 "the excluded table was never needed"

done_testing
