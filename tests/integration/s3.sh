#!/bin/sh
# The S3 store (src/store_s3.c) against OpenStack Swift's s3api, which
# checks SigV4 signatures, payload hashes and the region for real:
#  - agent -> s3://logship/test/one -> logship-restore into a second
#    cluster: every table equal; ls and verify read the S3 store
#  - Swift answers 501 to If-None-Match: the agent says so once and falls
#    back to HEAD then PUT
#  - a wrong secret, a missing bucket, missing credentials and an
#    unreachable endpoint each give one clear line, never the secret;
#    a credentials file in ~/.aws/credentials form works
#  - keys that need percent-encoding; listing pages (continuation tokens)
#    stay inside the store's prefix; a start_after that is not UTF-8
#  - multipart (threshold 6 MiB, parts of 5 MiB): 13 MiB round-trips byte
#    for byte; put_if_absent of an existing big object is refused; an
#    upload whose part 2 fails is aborted: no upload left, no object
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-swift.sh"

swift_skip_unless_installed
swift_start || { echo "Bail out! cannot start Swift"; exit 1; }
swift_mb logship; ok $? "bucket created with a signed PUT"

S3OPTS="--s3-endpoint $S3_ENDPOINT --s3-uri-style path --s3-region us-east-1"
URL=s3://logship/test/one
MP="env LOGSHIP_S3_MULTIPART_THRESHOLD=6291456 LOGSHIP_S3_PART_SIZE=5242880"

# Objects through the backend --------------------------------------------
printf 'hello' > "$T/small"
"$S3BUCKET" put "$URL" "odd/a b+c%d~é" "$T/small" 2>"$T/err"
ok $? "put of a key that needs percent-encoding (signed as S3 wants)"
is "$("$S3BUCKET" get "$URL" "odd/a b+c%d~é" 2>&1)" "hello" "and get returns it"
"$S3BUCKET" put-new "$URL" new/one "$T/small" 2>"$T/err"
ok $? "put_if_absent of a new key"
like "$(cat "$T/err")" "does not support conditional writes \(HTTP 501\); falling back to HEAD then PUT" \
	"Swift's 501 to If-None-Match is noted and the store falls back"
out=$("$S3BUCKET" put-new "$URL" new/one "$T/small" 2>&1); rc=$?
is "$rc" 1 "put_if_absent of an existing key fails"
like "$out" "^store s3://logship/test/one: put_if_absent new/one: already exists$" "as EXISTS, in one line"
out=$("$S3BUCKET" get "$URL" no/such 2>&1)
like "$out" "get no/such: HTTP 404 NoSuchKey" "get of a missing key: 404 NoSuchKey"

for k in 1 2 3 4 5 6 7; do "$S3BUCKET" put s3://logship/lst "pg/k$k" "$T/small" || break; done
"$S3BUCKET" put s3://logship/lst2 pg/k0 "$T/small"
"$S3BUCKET" put s3://logship/lst pgx "$T/small"
list() { LOGSHIP_S3_LIST_PAGE=2 "$S3BUCKET" list s3://logship/lst "$@" | tr '\n' ' '; }
is "$(list pg/ "" 5)" "pg/k1 5 pg/k2 5 pg/k3 5 pg/k4 5 pg/k5 5 truncated 1 " \
	"list_after, pages of 2 (continuation tokens): the first 5 and truncated"
is "$(list pg/ pg/k5 5)" "pg/k6 5 pg/k7 5 truncated 0 " "after pg/k5: the rest, not truncated"
is "$(list "" "" 100 | wc -w)" "18" "the whole store: 8 keys, none from the neighbouring prefix lst2/"
is "$(list "" "$(printf 'pg/\377')" 100)" "pgx 5 truncated 0 " \
	"start_after pg/\\xff (not UTF-8, as catalog.c skips a generation): all of pg/ skipped"

# Multipart ----------------------------------------------------------------
head -c 13631488 /dev/urandom > "$T/big"
$MP "$S3BUCKET" put "$URL" big/one "$T/big" 2>"$T/err"
ok $? "13 MiB put as a multipart upload" || sed 's/^/# /' "$T/err"
like "$("$S3BUCKET" etag logship/test/one/big/one 2>&1)" '-3"$' "in 3 parts (the ETag says so)"
"$S3BUCKET" get "$URL" big/one > "$T/big.out"
check "and it reads back byte for byte" cmp "$T/big" "$T/big.out"
$MP "$S3BUCKET" put-new "$URL" big/two "$T/big" 2>"$T/err"
ok $? "multipart put_if_absent of a new key" || sed 's/^/# /' "$T/err"
out=$($MP "$S3BUCKET" put-new "$URL" big/two "$T/big" 2>&1)
like "$out" "put_if_absent big/two: already exists" "and of an existing key: already exists"
out=$($MP LOGSHIP_S3_FAIL_PART=2 "$S3BUCKET" put "$URL" big/fail "$T/big" 2>&1); rc=$?
is "$rc" 1 "a multipart upload whose part 2 fails, fails"
like "$out" "put big/fail: part 2: failure injected" "naming the part"
is "$("$S3BUCKET" uploads logship | grep -c 'big/fail')" "0" "the upload was aborted: none left in ListMultipartUploads"
"$S3BUCKET" get "$URL" big/fail > /dev/null 2>&1
is "$?" 1 "and there is no object under the final name"

# Agent -> S3 -> restore -------------------------------------------------------
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" >/dev/null <<'SQL'
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TABLE notes (id serial PRIMARY KEY, t text, b bytea);
INSERT INTO notes (t, b) SELECT md5(g::text), decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
SQL

"$AGENT" --source "$SRC" --store "$URL" --init $S3OPTS --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
like "$(cat "$T/agent.log")" "streaming generation" "agent wrote its base to S3 and streams" || tail -n 5 "$T/agent.log" | sed 's/^/# /'
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 postgres >/dev/null 2>&1
psql_at "$P" -c "UPDATE notes SET t = t || '!' WHERE id % 7 = 0" >/dev/null
kill -TERM $APID; wait $APID
is "$?" 0 "SIGTERM: agent exits 0"
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$URL" --init $S3OPTS --endpos "$END" > "$T/agent2.log" 2>&1
ok $? "agent stored everything up to $END" || tail -n 5 "$T/agent2.log" | sed 's/^/# /'
is "$(grep -c 'does not support conditional writes (HTTP 501); falling back to HEAD then PUT' "$T/agent.log")" 1 \
	"the 501 fallback is noted once in the agent's log, for many segments"

"$RESTORE" --store "$URL" $S3OPTS --target "$DST" --state-dir "$T/st" > "$T/restore.log" 2>&1
is "$?" 0 "logship-restore from the S3 store exits 0" || tail -n 5 "$T/restore.log" | sed 's/^/# /'
table_sums "$P" > "$T/a"; table_sums "$Q" > "$T/b"
check "every table of the target equals the source" sh -c "diff '$T/a' '$T/b'"
out=$("$RESTORE" ls --store "$URL" $S3OPTS 2>&1)
like "$out" "generation [0-9a-f]{16}" "ls lists the generation" || echo "$out" | head -n 5 | sed 's/^/# /'
like "$out" "[1-9][0-9]* segments" "and its segments"
check "verify passes on the S3 store" "$RESTORE" verify --store "$URL" $S3OPTS

# Errors: one clear line, no secret ----------------------------------------
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret-42 "$RESTORE" ls --store "$URL" $S3OPTS 2>&1 >/dev/null); rc=$?
ok $((rc == 0)) "a wrong secret fails"
like "$out" "store s3://logship/test/one: (list .*|head logship.json): HTTP 403 SignatureDoesNotMatch: " "naming HTTP 403 SignatureDoesNotMatch"
is "$(printf '%s\n' "$out" | wc -l)" 1 "in one line"
ok $(printf '%s' "$out" | grep -c 'not-the-secret-42') "without the secret"
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret-42 "$AGENT" --source "$SRC" --store "$URL" --init $S3OPTS --endpos "$END" 2>&1); rc=$?
is "$rc" 1 "the agent with a wrong secret exits 1"
like "$out" "(put_if_absent probe/|head logship.json).*HTTP 403 SignatureDoesNotMatch" "naming the operation and the 403"
ok $(printf '%s' "$out" | grep -c 'not-the-secret-42') "without the secret"
out=$("$RESTORE" ls --store s3://no-such-bucket/p $S3OPTS 2>&1)
like "$out" "store s3://no-such-bucket/p: list .*: HTTP 404 NoSuchBucket: " "a missing bucket: 404 NoSuchBucket"
out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$RESTORE" ls --store "$URL" $S3OPTS 2>&1)
like "$out" "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" "missing credentials name the variables"
printf '[other]\naws_access_key_id = nobody\n\n[default]\naws_access_key_id = test:tester\naws_secret_access_key = testing\n' > "$T/creds"
chmod 600 "$T/creds"	# a credentials file readable by others is refused
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$RESTORE" ls --store "$URL" $S3OPTS --s3-credentials-file "$T/creds" > "$T/ls2.out" 2>&1
ok $? "credentials from a file ([default] section)" || sed 's/^/# /' "$T/ls2.out"
dead=$(free_port)
t0=$(date +%s)
out=$(LOGSHIP_S3_DEADLINE_S=3 "$RESTORE" ls --store "$URL" --s3-endpoint "http://127.0.0.1:$dead" --s3-uri-style path 2>&1); rc=$?
ok $((rc == 0)) "an unreachable endpoint fails"
like "$out" "store s3://logship/test/one: (list .*|head logship.json): Failed to connect to 127.0.0.1 port $dead.*\(gave up after [0-9]+ tries in [0-9]+ s\)" \
	"with curl's reason and the tries, in one line"
ok $(( $(date +%s) - t0 > 10 )) "within the deadline (LOGSHIP_S3_DEADLINE_S=3)"

swift_stop
done_testing
