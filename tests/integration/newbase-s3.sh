#!/bin/sh
# New bases and expire on an S3 store (OpenStack Swift's s3api): a second
# base beside the stream, a fresh restore from it equal to the source,
# expire deleting the first base and the segments before the second with
# S3 DELETE, verify and a restore from what is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-swift.sh"

swift_skip_unless_installed
swift_start || { echo "Bail out! cannot start Swift"; exit 1; }
swift_mb logship; ok $? "bucket created"
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S3OPTS="--s3-endpoint $S3_ENDPOINT --s3-uri-style path --s3-region us-east-1"
URL=s3://logship/nb
GEN=0000000000000001
for db in fresh after; do psql_at "$Q" -c "create database $db" >/dev/null; done
keys() { "$S3BUCKET" list "$URL" "" "" 10000 | awk '$1 != "truncated" { print $1 }'; }
load() { "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T "$1" -R 100 postgres >/dev/null 2>&1; }

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$URL" --init $S3OPTS --flush-interval 0.3 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
load 3
load 4 & LPID=$!
sleep 1
"$AGENT" --source "$SRC" --store "$URL" $S3OPTS --new-base > "$T/nb.log" 2>&1
is "$?" 0 "--new-base on an S3 store exits 0 under load" || sed 's/^/# /' "$T/nb.log"
wait $LPID
load 2
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$URL" $S3OPTS --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END"
B=$(keys | sed -n "s,^$GEN/\(base-[0-9a-f]*\)/manifest\$,\1,p")
ok "$([ -n "$B" ]; echo $?)" "the new base $B is in the bucket"
fingerprint "$P" postgres > "$T/fp_src"

"$RESTORE" --store "$URL" $S3OPTS --target "$(dst fresh)" --state-dir "$T/st1" > "$T/r1.log" 2>&1
is "$?" 0 "a fresh restore from S3 exits 0"
like "$(cat "$T/r1.log")" "base $B of generation $GEN" "from the new base"
fingerprint "$Q" fresh > "$T/fp1"
check "equal to the source" sh -c "diff '$T/fp_src' '$T/fp1'"

keys > "$T/k0"
"$RESTORE" expire --store "$URL" $S3OPTS --keep-bases 1 > "$T/x.log" 2>&1
is "$?" 0 "expire --keep-bases 1 on S3 exits 0" || sed 's/^/# /' "$T/x.log"
keys > "$T/k1"
is "$(grep -c "^$GEN/base/" "$T/k1")" 0 "the first base is deleted from the bucket"
ok "$([ "$(grep -c "^$GEN/seg/" "$T/k1")" -lt "$(grep -c "^$GEN/seg/" "$T/k0")" ]; echo $?)" "and the segments before the new base"
is "$(grep -c "^$GEN/expired/" "$T/k1")" 1 "a low-water mark is written"
"$RESTORE" verify --store "$URL" $S3OPTS > "$T/v.log" 2>&1
is "$?" 0 "verify passes on the expired S3 store" || sed 's/^/# /' "$T/v.log"
"$RESTORE" --store "$URL" $S3OPTS --target "$(dst after)" --state-dir "$T/st2" > "$T/r2.log" 2>&1
is "$?" 0 "a restore after expire exits 0"
fingerprint "$Q" after > "$T/fp2"
check "equal to the source" sh -c "diff '$T/fp_src' '$T/fp2'"

swift_stop
done_testing
