#!/bin/sh
# Security (issue 14):
#  1. secrets never in argv, logs or error text: a source and a target that
#     check passwords, a store whose S3 secret is distinctive; a good run and
#     failing ones (wrong password, unreachable store, no such bucket, wrong
#     S3 secret, wrong encryption key) at -vv; every output, log, metrics
#     file, status, the store's names and bytes, the state dir and the
#     command lines of the agent, the restore and their children (pg_dump,
#     psql: logged by wrappers and sampled in /proc) are searched for them
#  2. key, credential and config files and state/spool dirs that others may
#     read are refused with a chmod hint; what logship creates is 0600/0700
#     (the metrics textfile 0644) under umask 000
#  3. an encrypted store: no object reveals a row value (base, TOAST, stream,
#     DDL), a table or a column name, even inflated; object names are
#     numbers and fixed words; a plain store shows the same scan finds them
#  4. TLS: a self-signed HTTPS endpoint is refused without --s3-ca-file,
#     and works with it
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-swift.sh"
SCAN="$top_srcdir/tests/integration/secscan.py"
unlike() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 1 "$3"; printf '%s\n' "$1" | head -n 5 | sed 's/^/#   got: /'; else ok 0 "$3"; fi; }
GEN=0000000000000001
command -v openssl >/dev/null || skip_all "openssl is not installed"

r=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
PW="SrcPw-$r-kestrel"		# the source's password
TPW="TgtPw-$r-heron"		# the target's
BADPW="BadPw-$r-osprey"		# a wrong one
S3SECRET="S3Sec$r"		# Swift's secret (sed-safe)
BADS3="BadS3$r"
SECRETS="$PW $TPW $BADPW $S3SECRET $BADS3"
ROWS="BASEVAL-$r TOASTVAL-$r STREAMVAL-$r TOASTSTREAM-$r DDLROWVAL-$r"
NAMES="tbl_zebra_secret col_okapi_secret tbl_ddl_narwhal col_ddl_quokka"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
psql_at "$P" -c "CREATE ROLE shipper LOGIN SUPERUSER REPLICATION PASSWORD '$PW'" >/dev/null
psql_at "$Q" -c "CREATE ROLE loader LOGIN SUPERUSER PASSWORD '$TPW'" -c "CREATE ROLE shipper" >/dev/null
for d in "$src_DIR" "$dst_DIR"; do	# these roles must give their password
	{ printf 'host all shipper 127.0.0.1/32 scram-sha-256\nhost replication shipper 127.0.0.1/32 scram-sha-256\n'
	  printf 'host all loader 127.0.0.1/32 scram-sha-256\n'; cat "$d/data/pg_hba.conf"; } > "$T/hba"
	cat "$T/hba" > "$d/data/pg_hba.conf"
done
psql_at "$P" -c "select pg_reload_conf()" >/dev/null; psql_at "$Q" -c "select pg_reload_conf()" >/dev/null
SRC="host=127.0.0.1 port=$P user=shipper dbname=postgres"
DST="host=127.0.0.1 port=$Q user=loader dbname=postgres"
out=$(PGPASSWORD= "$PG_BINDIR/psql" -X -w -h 127.0.0.1 -p "$P" -U shipper -d postgres -c 'select 1' 2>&1); rc=$?
is "$rc" 2 "the source asks shipper for a password"

psql_at "$P" -c "CREATE TABLE tbl_zebra_secret (id serial PRIMARY KEY, col_okapi_secret text)" \
	-c "INSERT INTO tbl_zebra_secret (col_okapi_secret) SELECT 'BASEVAL-$r-' || i FROM generate_series(1, 20) i" \
	-c "INSERT INTO tbl_zebra_secret (col_okapi_secret) SELECT 'TOASTVAL-$r' || string_agg(md5(i::text), '') FROM generate_series(1, 400) i" >/dev/null

# the children: wrappers that log their argv, then run the real program a
# little later (so that the /proc sampler sees them too)
for prog in pg_dump psql; do
	printf '#!/bin/sh\nprintf "%%s\\n" "$0 $*" >> %s/child-argv\nsleep 0.2\nexec %s/%s "$@"\n' \
		"$T" "$PG_BINDIR" "$prog" > "$T/$prog"
	chmod 755 "$T/$prog"
done
export LOGSHIP_PG_DUMP="$T/pg_dump" LOGSHIP_PSQL="$T/psql"
OUT="$T/out"; mkdir -m 700 "$OUT"	# every output of every run lands here
# sampled NAME PROGRAM ARGS...: start PROGRAM in the background (its pid in
# SPID) once a sampler watches the command lines of its process tree
sampled() {
	_nm=$1; shift
	(while [ ! -f "$T/ready-$_nm" ]; do sleep 0.05; done; umask 000; exec "$@") &
	SPID=$!; track_pid $SPID
	python3 "$SCAN" procwatch "$OUT/cmdline-$_nm" $SPID "$T/ready-$_nm" &
	track_pid $!
}

# ---- 2. permissions ---------------------------------------------------------
openssl rand -hex 32 > "$T/key"
chmod 644 "$T/key"
out=$("$AGENT" --source "$SRC" --store "$T/p" --init --key-file "$T/key" 2>&1); rc=$?
is "$rc" 2 "a key file others may read: usage error"
is "$out" "logship-agent: key file $T/key: mode 0644 lets other users read it; run: chmod 600 $T/key" \
	"one line naming the file, its mode and the fix"
chmod 640 "$T/key"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/key"	# root's own 0640 files pass
out=$("$RESTORE" verify --store "$T/p" --key-file "$T/key" 2>&1); rc=$?
is "$rc" 2 "group-readable (0640) is refused too (restore)"
like "$out" "mode 0640 .*chmod 600" "naming mode 0640"
if [ "$(id -u)" -eq 0 ]; then
	chown root "$T/key"
	out=$("$RESTORE" verify --store "$T/p" --key-file "$T/key" 2>&1)
	unlike "$out" "chmod" "a root-owned 0640 file passes (root:service 0640, as libpq allows)"
fi
chmod 600 "$T/key"
openssl rand -hex 32 > "$T/wrongkey"; chmod 600 "$T/wrongkey"

# compression zlib: secscan.py inflates zlib (not zstd) at every offset, so
# that plaintext behind any codec layer would show (encryption comes after
# compression whatever the codec)
printf 'source = %s password=%s\nstore = %s\ncompression = zlib\n' "$SRC" "$PW" "$T/p" > "$T/agent.conf"
chmod 644 "$T/agent.conf"
out=$("$AGENT" --config "$T/agent.conf" --endpos 0/1 2>&1); rc=$?
is "$rc" 2 "a config file holding the source's password, readable by others: refused"
like "$out" "config file .*$T/agent.conf: mode 0644 .*chmod 600 $T/agent.conf" "with the chmod that fixes it"
out=$("$AGENT" --config "$T/agent.conf" --source "$SRC" --endpos 0/1 2>&1); rc=$?
is "$rc" 2 "also when --source on the command line overrides the file's"
printf 'store = %s\n' "$T/p" > "$T/nopw.conf"; chmod 644 "$T/nopw.conf"
out=$("$AGENT" status --config "$T/nopw.conf" --source "host=127.0.0.1 port=$P user=postgres" 2>&1)
unlike "$out" "chmod" "a config file without a secret may be 0644"
printf 'target = %s password=%s\nstore = %s\nstate-dir = %s\n' "$DST" "$TPW" "$T/p" "$T/st-p" > "$T/restore.conf"
chmod 604 "$T/restore.conf"
out=$("$RESTORE" --config "$T/restore.conf" 2>&1); rc=$?
is "$rc" 2 "a restore config file holding the target's password, readable by others: refused"
like "$out" "$T/restore.conf: mode 0604 .*chmod 600" "naming it"
chmod 600 "$T/agent.conf" "$T/restore.conf"

mkdir -m 755 "$T/st-open"
out=$("$RESTORE" --store "$T/p" --target "$DST" --state-dir "$T/st-open" 2>&1); rc=$?
is "$rc" 2 "a state dir others may enter: refused"
like "$out" "state dir $T/st-open: mode 0755 lets other users in; run: chmod 700 $T/st-open" "with chmod 700"
mkdir -m 711 "$T/spool"
out=$("$AGENT" --source "$SRC" --store "$T/p" --init --spool-dir "$T/spool" 2>&1); rc=$?
is "$rc" 2 "a spool dir others may enter (0711): refused"
like "$out" "spool dir $T/spool: mode 0711 .*chmod 700 $T/spool" "naming it"
chmod 700 "$T/spool"

printf '[default]\naws_access_key_id = a\naws_secret_access_key = %s\n' "$BADS3" > "$T/s3creds"
chmod 644 "$T/s3creds"
out=$("$RESTORE" ls --store s3://b --s3-endpoint http://127.0.0.1:1 --s3-credentials-file "$T/s3creds" 2>&1); rc=$?
is "$rc" 2 "an S3 credentials file others may read: refused"
like "$out" "S3 credentials file $T/s3creds: mode 0644 .*chmod 600 $T/s3creds" "naming it"
printf '%s\n' "$out" > "$OUT/perm-s3.err"
printf '{"type":"service_account","client_email":"x@y","private_key":"%s"}\n' "$BADS3" > "$T/sa.json"
chmod 604 "$T/sa.json"
out=$(GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$RESTORE" ls --store gcs://bucket 2>&1); rc=$?
is "$rc" 2 "a GCS key file others may read: refused"
like "$out" "GCS key file $T/sa.json: mode 0604 .*chmod 600 $T/sa.json" "naming it"
printf '%s\n' "$out" > "$OUT/perm-gcs.err"

# ---- 1 and 3. a good run: encrypted store, passwords in 0600 config files ---
sampled agent-base "$AGENT" --config "$T/agent.conf" --init --ddl --key-file "$T/key" -v -v \
	--log-file "$OUT/agent.log" --metrics-file "$OUT/agent.prom" --spool-dir "$T/spool" \
	--flush-interval 0.2 > "$OUT/agent.stdout" 2> "$OUT/agent.stderr"
APID=$SPID
i=0; while [ ! -f "$T/p/$GEN/base/manifest" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
test -f "$T/p/$GEN/base/manifest"; ok $? "the base of the encrypted store is written"
psql_at "$P" -c "INSERT INTO tbl_zebra_secret (col_okapi_secret) VALUES ('STREAMVAL-$r')" \
	-c "INSERT INTO tbl_zebra_secret (col_okapi_secret) SELECT 'TOASTSTREAM-$r' || string_agg(md5(i::text), '') FROM generate_series(1, 400) i" \
	-c "ALTER TABLE tbl_zebra_secret ADD COLUMN col_ddl_quokka int" \
	-c "CREATE TABLE tbl_ddl_narwhal (id int PRIMARY KEY, v text)" \
	-c "INSERT INTO tbl_ddl_narwhal VALUES (1, 'DDLROWVAL-$r')" >/dev/null
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $APID; wait $APID; rc=$?
is "$rc" 0 "the agent stops on SIGTERM"
(umask 000; "$AGENT" --config "$T/agent.conf" --key-file "$T/key" -v -v --endpos "$END" \
	--log-file "$OUT/agent.log" --metrics-file "$OUT/agent.prom" --spool-dir "$T/spool" \
	> "$OUT/agent2.stdout" 2> "$OUT/agent2.stderr"); rc=$?
is "$rc" 0 "the agent stores everything up to $END"
grep -q "pg_dump" "$OUT/cmdline-agent-base"; ok $? "the sampler saw pg_dump under the agent"
grep -q "pg_dump" "$T/child-argv"; ok $? "the pg_dump wrapper logged its argv"
"$AGENT" status --config "$T/agent.conf" --format json > "$OUT/agent-status.json" 2>&1
ok $? "agent status with the config file"

sampled restore "$RESTORE" --config "$T/restore.conf" --key-file "$T/key" -v -v \
	--log-file "$OUT/restore.log" --metrics-file "$OUT/restore.prom" \
	> "$OUT/restore.stdout" 2> "$OUT/restore.stderr"
wait $SPID; rc=$?
is "$rc" 0 "the restore of the encrypted store succeeds"
[ "$rc" -eq 0 ] || tail -n 5 "$OUT/restore.stderr" "$OUT/restore.log" | sed 's/^/# /'
same_data "$P" "$Q"; ok $? "the target equals the source"
grep -q "psql" "$OUT/cmdline-restore"; ok $? "the sampler saw psql under the restore (pre/post-data)"
is "$(grep -c "psql" "$T/child-argv")" 2 "psql ran for pre-data and post-data"
"$RESTORE" status --store "$T/p" --state-dir "$T/st-p" --format json > "$OUT/restore-status.json" 2>&1
ok $? "restore status"
cp "$T/child-argv" "$OUT/"

# creation modes, under umask 000
is "$(stat -c %a "$OUT/agent.log" "$OUT/restore.log" | sort -u)" 600 "log files are 0600"
is "$(stat -c %a "$OUT/agent.prom" "$OUT/restore.prom" | sort -u)" 644 "metrics textfiles are 0644, not 0666"
is "$(find "$T/p" -type f -printf '%m\n' | sort -u)" 600 "every store file is 0600"
is "$(find "$T/p" -type d -printf '%m\n' | sort -u)" 700 "every store dir is 0700"
is "$(find "$T/st-p" -printf '%m\n' | sort -u | tr '\n' ' ')" "600 700 " "the state dir is 0700, its files 0600"

# 3. the encrypted store
python3 "$SCAN" scan "$T/p" $ROWS $NAMES $SECRETS > "$T/leaks"
is "$(cat "$T/leaks")" "" "no object of the encrypted store holds a row value, a table or column name, or a secret"
names=$(cd "$T/p" && find . -mindepth 1 | sed 's|^\./||' | grep -Ev '^(logship\.json|probe|[0-9a-f]{16}|[0-9a-f]{16}\.confirmed|[0-9a-f]{16}/(base|base-[0-9a-f]{16}|seg|expired)|[0-9a-f]{16}/(base|base-[0-9a-f]{16})/(manifest|pre-data|post-data|large-objects|t-[0-9a-f]{8}-[0-9a-f]{8})|[0-9a-f]{16}/(seg|expired)/[0-9a-f]{16})$')
is "$names" "" "object names are numbers and fixed words"
is "$(ls "$T/p/$GEN/seg" | wc -l | tr -d ' ')" "$(ls "$T/p/$GEN/seg" | grep -c .)" "(the segments were listed)"
out=$("$RESTORE" cat --store "$T/p" 2>&1); rc=$?
is "$rc" 1 "cat without the key fails"

# the same scan on a plain store finds what encryption hides
"$AGENT" --source "host=127.0.0.1 port=$P user=postgres dbname=postgres" --store "$T/plain" --init --compression zlib \
	--slot plain --endpos 0/1 > "$T/plain.log" 2>&1
python3 "$SCAN" scan "$T/plain" $ROWS $NAMES > "$T/plain-leaks"
for v in BASEVAL-$r TOASTVAL-$r STREAMVAL-$r tbl_zebra_secret col_okapi_secret; do
	grep -q " $v\$" "$T/plain-leaks"; ok $? "the scan finds $v in a plain store"
done

# ---- 1. failing runs -----------------------------------------------------
printf 'source = %s password=%s\nstore = %s\n' "$SRC" "$BADPW" "$T/p" > "$T/bad.conf"; chmod 600 "$T/bad.conf"
timeout 60 "$AGENT" --config "$T/bad.conf" -v -v --endpos "$END" > "$OUT/badpw.out" 2>&1; rc=$?
is "$rc" 1 "a wrong source password: exit 1"
like "$(cat "$OUT/badpw.out")" "source refused the login" "saying the login was refused"
printf 'target = %s password=%s\n' "$DST" "$BADPW" > "$T/badt.conf"; chmod 600 "$T/badt.conf"
timeout 60 "$RESTORE" --config "$T/badt.conf" --store "$T/p" --key-file "$T/key" --state-dir "$T/st-bad" -v -v \
	> "$OUT/badtpw.out" 2>&1; rc=$?
is "$rc" 1 "a wrong target password: exit 1"
timeout 60 "$RESTORE" verify --store "$T/p" --key-file "$T/wrongkey" > "$OUT/wrongkey.out" 2>&1; rc=$?
is "$rc" 1 "a wrong encryption key: exit 1"
# a password on the command line: overwritten in argv, warned about (a
# server that accepts and never answers keeps both waiting in the connect)
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write("%d" % s.getsockname()[1]); time.sleep(120)' "$T/mute.port" &
track_pid $!
i=0; while [ ! -s "$T/mute.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
MUTE=$(cat "$T/mute.port")
"$AGENT" --source "host=127.0.0.1 port=$MUTE user=shipper password=$BADPW" --store "$T/p" \
	-v -v > "$OUT/argv-agent.out" 2>&1 &
XPID=$!; track_pid $XPID
"$RESTORE" --target "host=127.0.0.1 port=$MUTE user=loader password=$TPW" --store "$T/p" \
	--key-file "$T/key" --state-dir "$T/st-argv" --follow -v -v > "$OUT/argv-restore.out" 2>&1 &
YPID=$!; track_pid $YPID
i=0; until grep -qs "could see in ps" "$OUT/argv-agent.out" && grep -qs "could see in ps" "$OUT/argv-restore.out" ||
	[ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
tr '\0' ' ' < /proc/$XPID/cmdline > "$OUT/cmdline-argv-agent"
tr '\0' ' ' < /proc/$YPID/cmdline > "$OUT/cmdline-argv-restore"
kill -TERM $XPID $YPID 2>/dev/null; wait $XPID $YPID 2>/dev/null
like "$(cat "$OUT/cmdline-argv-agent")" "--source x+ " "the agent overwrote --source in its argv"
like "$(cat "$OUT/cmdline-argv-restore")" "--target x+ " "the restore overwrote --target in its argv"
like "$(cat "$OUT/argv-agent.out")" "could see in ps" "the agent warns about a password on its command line"
like "$(cat "$OUT/argv-restore.out")" "could see in ps" "the restore warns too"

# ---- S3 (Swift with a distinctive secret), and 4. TLS ----------------------
if [ -x /usr/bin/swift-proxy-server ] && /usr/bin/python3 -c 'import swift.common.middleware.s3api' 2>/dev/null &&
	SWIFT_SECRET=$S3SECRET swift_start; then
	swift_mb sec >/dev/null 2>&1
	SO="--s3-endpoint $S3_ENDPOINT --s3-uri-style path"
	LOGSHIP_S3_DEADLINE_S=3 timeout 60 "$RESTORE" mirror --from "$T/p" --to s3://sec/pre $SO --key-file "$T/key" \
		> "$OUT/s3-mirror.out" 2>&1
	ok $? "mirror of the encrypted store to S3"
	LOGSHIP_S3_DEADLINE_S=3 AWS_SECRET_ACCESS_KEY=$BADS3 timeout 60 "$RESTORE" ls --store s3://sec/pre $SO \
		> "$OUT/s3-badsecret.out" 2>&1; rc=$?
	is "$rc" 1 "a wrong S3 secret: exit 1"
	like "$(cat "$OUT/s3-badsecret.out")" "SignatureDoesNotMatch|403" "saying the signature was refused"
	LOGSHIP_S3_DEADLINE_S=3 timeout 60 "$RESTORE" ls --store s3://nosuchbucket/pre $SO \
		> "$OUT/s3-nobucket.out" 2>&1; rc=$?
	is "$rc" 1 "no such bucket: exit 1"
	LOGSHIP_S3_DEADLINE_S=3 timeout 60 "$AGENT" --config "$T/agent.conf" --store s3://sec/pre \
		--s3-endpoint "http://127.0.0.1:$(free_port)" --s3-uri-style path --key-file "$T/key" -v -v \
		--endpos "$END" > "$OUT/s3-unreachable.out" 2>&1; rc=$?
	is "$rc" 1 "an unreachable store: exit 1"

	# 4. TLS in front of Swift with a self-signed certificate
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" >/dev/null 2>&1
	python3 "$SCAN" tlsproxy "$T/tls.crt" "$T/tls.key" "$T/tls.port" "${S3_ENDPOINT##*:}" &
	track_pid $!
	i=0; while [ ! -f "$T/tls.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	TLS="--s3-endpoint https://127.0.0.1:$(cat "$T/tls.port") --s3-uri-style path"
	LOGSHIP_S3_DEADLINE_S=3 timeout 60 "$RESTORE" verify --store s3://sec/pre $TLS --key-file "$T/key" \
		> "$OUT/tls-default.out" 2>&1; rc=$?
	is "$rc" 1 "a self-signed HTTPS endpoint is refused by default"
	like "$(cat "$OUT/tls-default.out")" "certificate.*--s3-ca-file" "the error says certificate and names --s3-ca-file"
	is "$(grep -c . "$OUT/tls-default.out")" 1 "in one line"
	LOGSHIP_S3_DEADLINE_S=3 timeout 60 "$RESTORE" verify --store s3://sec/pre $TLS --key-file "$T/key" \
		--s3-ca-file "$T/tls.crt" > "$OUT/tls-ca.out" 2>&1; rc=$?
	is "$rc" 0 "with --s3-ca-file it is trusted"
	[ "$rc" -eq 0 ] || sed 's/^/# /' "$OUT/tls-ca.out" | tail -n 3
	swift_stop
else
	diag "Swift with s3api is not installed: the S3 and TLS checks are skipped"
fi

# ---- every output, searched for every secret --------------------------------
cp -r "$T/st-p" "$OUT/state"
python3 "$SCAN" scan "$OUT" $SECRETS "$(cat "$T/key")" "$(cat "$T/wrongkey")" > "$T/out-leaks"
is "$(cat "$T/out-leaks")" "" "no secret in any output, log, metrics or status file, state dir or sampled command line"
is "$(cat "$OUT"/cmdline-* "$OUT/child-argv" | grep -c "password=")" 0 "no command line holds a password= option"
diag "outputs searched: $(ls "$OUT" | wc -l), command lines sampled: $(cat "$OUT"/cmdline-* | wc -l)"
done_testing
