#!/bin/sh
# logship-agent's bad input: each case gets one clear line naming the cause
# and the fix, exit 1 (2 for usage), and nothing in the store or on the
# slot is damaged.  Every store option works on the command line and in
# the --config file.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"
psql_at "$P" -c "CREATE TABLE t (id int primary key, v text)" >/dev/null

one_line() {	# one_line OUTPUT: the error line (ignoring a ps warning)
	printf '%s\n' "$1" | grep -v 'holds a password' | grep -c .
}

out=$("$AGENT" --store "$S" --init 2>&1); rc=$?
is "$rc" 2 "missing --source is a usage error (exit 2)"
like "$out" "--source CONNINFO is required" "naming the option"
out=$("$AGENT" --source "$SRC" --store "$S" --init --flush-interval abc 2>&1); rc=$?
is "$rc" 2 "bad --flush-interval is a usage error"
out=$("$AGENT" --source "$SRC" --store "gopher://x/y" --init 2>&1); rc=$?
is "$rc" 2 "unknown store scheme exits 2"
out=$("$AGENT" --source "$SRC" --store "$S" --init --tables foo 2>&1); rc=$?
is "$rc" 2 "--tables without a schema is a usage error"
like "$out" "write each table as schema.table" "saying how to write it"
printf 'short' > "$T/badkey"; chmod 600 "$T/badkey"
out=$("$AGENT" --source "$SRC" --store "$S" --init --key-file "$T/badkey" 2>&1); rc=$?
is "$rc" 2 "a malformed key file exits 2"
like "$out" "key file .*expected 32 raw bytes" "naming the key file and the format"

out=$("$AGENT" --source "host=127.0.0.1 port=1 user=postgres dbname=postgres" --store "$S" --init 2>&1); rc=$?
is "$rc" 1 "unreachable source exits 1"
like "$out" "cannot connect to the source.*check host and port" "with the cause and the fix"
is "$(one_line "$out")" "1" "in one line"

# password authentication for one role
psql_at "$P" -c "CREATE ROLE pw LOGIN REPLICATION PASSWORD 'right'" >/dev/null
sed -i "1i host all pw 127.0.0.1/32 scram-sha-256" "$src_DIR/data/pg_hba.conf"
psql_at "$P" -c "select pg_reload_conf()" >/dev/null
out=$("$AGENT" --source "host=127.0.0.1 port=$P user=pw password=wrong dbname=postgres" --store "$S" --init 2>&1); rc=$?
is "$rc" 1 "wrong password exits 1"
like "$out" "refused the login.*password authentication failed.*fix the user/password" "naming the cause and fix"
if printf '%s\n' "$out" | grep -q "wrong"; then ok 1 "the password is not echoed"; else ok 0 "the password is not echoed"; fi

psql_at "$P" -c "CREATE ROLE norepl LOGIN" >/dev/null
out=$("$AGENT" --source "host=127.0.0.1 port=$P user=norepl dbname=postgres" --store "$S" --init 2>&1); rc=$?
is "$rc" 1 "a role without REPLICATION exits 1"
like "$out" "lacks the REPLICATION privilege \(ALTER ROLE norepl REPLICATION\)" "with the fix"

psql_at "$P" -c "CREATE ROLE nocreate LOGIN REPLICATION" -c "REVOKE CREATE ON DATABASE postgres FROM PUBLIC" >/dev/null
out=$("$AGENT" --source "host=127.0.0.1 port=$P user=nocreate dbname=postgres" --store "$S" --init 2>&1); rc=$?
is "$rc" 1 "a role without CREATE on the database exits 1"
like "$out" "lacks the CREATE privilege" "naming the privilege"

out=$("$AGENT" --source "$SRC" --store "/proc/logship-store" --init 2>&1); rc=$?
is "$rc" 1 "an unwritable store exits 1"
like "$out" "store is not writable; check its path/permissions" "saying so"
is "$(find "$S" -type f 2>/dev/null | wc -l | tr -d ' ')" "0" "nothing was written to the store by the failed runs"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" "0" "and no slot was created"

# wal_level=replica on a second cluster
pg_start rep
psql_at "$rep_PORT" -c "ALTER SYSTEM SET wal_level = replica" >/dev/null
pg_as "$PG_BINDIR/pg_ctl" -D "$rep_DIR/data" -w restart -m fast >/dev/null
out=$("$AGENT" --source "host=127.0.0.1 port=$rep_PORT user=postgres dbname=postgres" --store "$T/s2" --init 2>&1); rc=$?
is "$rc" 1 "wal_level=replica exits 1"
like "$out" "wal_level=replica.*wal_level = logical" "naming the setting and the fix"

# a running agent; then a second agent on the same slot, and on the same store
: > "$T/a1.log"
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 --heartbeat-interval 1d > "$T/a1.log" 2>&1 &
A1=$!; track_pid $A1
i=0; while ! grep -q "streaming generation" "$T/a1.log" && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/a1.log"; ok $? "first agent is streaming"
psql_at "$P" -c "INSERT INTO t VALUES (1, 'one')" >/dev/null
sleep 1
# the running agent records its idle position (<gen>.confirmed) now and
# then: everything else must stay as it is
store_sum() { find "$S" -type f ! -name '*.confirmed' | sort | xargs md5sum | md5sum; }
before=$(store_sum)
out=$("$AGENT" --source "$SRC" --store "$T/other" --init 2>&1); rc=$?
is "$rc" 1 "a second agent on the busy slot exits 1"
like "$out" "slot logship is in use by process [0-9]+" "naming the slot and the process"
out=$("$AGENT" --source "$SRC" --store "$S" --init --slot other 2>&1); rc=$?
is "$rc" 1 "a second agent on the same store with another slot exits 1"
like "$out" "is fed by slot logship, not other" "naming the owner"
is "$(store_sum)" "$before" "the store is unchanged by the refused agents"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" "1" "and only the first agent's slot exists"
kill -TERM $A1; wait $A1; ok $? "first agent stops cleanly on SIGTERM"
check "its store verifies" "$RESTORE" verify --store "$S"

# store options, on the command line and in --config ------------------------
NOSRC="host=127.0.0.1 port=1 user=postgres dbname=postgres"
printf '[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s\n' > "$T/s3creds"
chmod 600 "$T/s3creds"
unset STORAGE_EMULATOR_HOST GOOGLE_APPLICATION_CREDENTIALS AWS_ACCESS_KEY_ID \
    AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AZURE_STORAGE_SAS_TOKEN
export LOGSHIP_GCS_ANONYMOUS=1 AZURE_STORAGE_ACCOUNT=acct \
    AZURE_STORAGE_KEY="$(printf 'logship-test-key' | base64)"

# both DESC RC ERE STORE --KEY VALUE...: the agent on STORE with these
# settings, first as options, then as lines of its --config file, exits RC
# with ERE in its output (before it gets to the source: exit 1 and ERE
# "cannot connect to the source")
both() {
	_d=$1; _rc=$2; _re=$3; _st=$4; shift 4
	out=$(timeout 20 "$AGENT" --source "$NOSRC" --store "$_st" --init "$@" 2>&1)
	is "$?" "$_rc" "$_d: on the command line"
	like "$out" "$_re" "$_d: saying so"
	: > "$T/agent.conf"
	while [ $# -ge 2 ]; do printf '%s = %s\n' "${1#--}" "$2" >> "$T/agent.conf"; shift 2; done
	out=$(timeout 20 "$AGENT" --source "$NOSRC" --store "$_st" --init --config "$T/agent.conf" 2>&1)
	is "$?" "$_rc" "$_d: in the config file"
	like "$out" "$_re" "$_d: saying so"
}
# on a directory store they change nothing
both "every store option" 1 "cannot connect to the source" "$T/s-opts" \
    --s3-endpoint http://127.0.0.1:1 --s3-region eu-west-1 --s3-uri-style path \
    --s3-ca-file "$T/ca.pem" --s3-credentials-file "$T/s3creds" \
    --azure-endpoint http://127.0.0.1:1/acct --azure-ca-file "$T/ca.pem" \
    --gcs-endpoint http://127.0.0.1:1 --gcs-ca-file "$T/ca.pem"
# the cloud ones reach their backends: an https endpoint (the source's
# port: any that accepts a connection) and a CA file that does not exist
# fail the first request, naming the file, before anything is written
both "S3 with a CA file that does not exist" 1 "$T/no-s3-ca.pem" s3://bkt/p \
    --s3-endpoint "https://127.0.0.1:$P" --s3-uri-style path \
    --s3-credentials-file "$T/s3creds" --s3-ca-file "$T/no-s3-ca.pem"
both "Azure with a CA file that does not exist" 1 "$T/no-azure-ca.pem" \
    azure://cont/p --azure-endpoint "https://127.0.0.1:$P/acct" \
    --azure-ca-file "$T/no-azure-ca.pem"
both "GCS with a CA file that does not exist" 1 "$T/no-gcs-ca.pem" \
    gcs://bkt/p --gcs-endpoint "https://127.0.0.1:$P" \
    --gcs-ca-file "$T/no-gcs-ca.pem"
out=$("$AGENT" --source "$NOSRC" --store "$T/s-opts" --s3-no-such-option x 2>&1); rc=$?
is "$rc" 2 "an unknown option is a usage error"
like "$out" 'Try "logship-agent --help"\.$' "pointing to --help"
printf 's3-no-such-option = x\n' > "$T/agent.conf"
out=$("$AGENT" --source "$NOSRC" --store "$T/s-opts" --config "$T/agent.conf" 2>&1); rc=$?
is "$rc" 2 "an unknown setting in the config file is a usage error"
like "$out" "agent.conf:1: unknown setting \"s3-no-such-option\"" "naming the line"

done_testing
