#!/bin/sh
# logship with an Azure Blob store, against a private Azurite that checks
# Shared Key signatures and SAS tokens:
#  - agent -> azure://container/prefix -> logship-restore into a second
#    cluster: every table equal; verify and ls read the store
#  - block uploads (a small test-only threshold) round-trip byte-identical,
#    and nothing appears under the name until the block list is committed
#  - put_if_absent on an existing blob: exists (Put Blob and block list)
#  - listing pages through many keys at one request per page
#  - through a proxy that injects faults: 503s are retried, a cut download
#    resumes where it stopped, a conditional put whose answer was lost is
#    recognised as ours; agent and restore through tests/tools/faultproxy
#    (500, 503, resets, stalls) still give an equal copy; an unreachable
#    endpoint gives up at the deadline
#  - a wrong key: one line naming HTTP 403 and the service's code, never the
#    key; a missing container: one clear line; a SAS token works, a
#    read-only one cannot write
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-azurite.sh"

az_start; rc=$?
[ $rc -eq 2 ] && skip_all "Azurite is not installed (see tests/integration/lib-azurite.sh)"
[ $rc -eq 0 ] || { echo "Bail out! cannot start Azurite"; exit 1; }
check "a container created with a signed request" az_mkcontainer logship

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
URL=azure://logship/site1
EP="--azure-endpoint $AZ_ENDPOINT"
one_line() { printf '%s\n' "$1" | grep -c .; }

# agent -> Azure -> restore ----------------------------------------------
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" >/dev/null <<'SQL'
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TABLE docs (id serial PRIMARY KEY, body text, raw bytea);
INSERT INTO docs (body, raw) SELECT repeat(md5(g::text), 50), decode(md5(g::text), 'hex')
    FROM generate_series(1, 2000) g;
SQL
# big objects (base chunks) go up in blocks, small ones with Put Blob
# small: zstd makes the base chunks small (the raw column is random bytes)
export LOGSHIP_AZURE_MULTIPART_THRESHOLD=16384 LOGSHIP_AZURE_PART_SIZE=8192
"$AGENT" --source "$SRC" --store "$URL" --init $EP --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -qs "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
like "$(cat "$T/agent.log")" "streaming generation" "the agent made its base in Azure and streams"
psql_at "$P" >/dev/null <<'SQL'
UPDATE docs SET body = 'changed' WHERE id % 7 = 0;
DELETE FROM docs WHERE id % 11 = 0;
INSERT INTO docs (body) SELECT 'late ' || g FROM generate_series(1, 500) g;
SQL
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 2 postgres >/dev/null 2>&1
kill -TERM $APID; wait $APID
is "$?" 0 "the agent exits 0 on SIGTERM"
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$URL" --init $EP --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything up to $END" || tail -n 20 "$T/agent.log" | sed 's/^/# /'
unset LOGSHIP_AZURE_MULTIPART_THRESHOLD LOGSHIP_AZURE_PART_SIZE
ok $([ "$(az_requests "comp=blocklist")" -gt 0 ]; echo $?) "some objects went up as blocks ($(az_requests "comp=blocklist") block lists)"

"$RESTORE" --store "$URL" $EP --target "$DST" --state-dir "$T/st" > "$T/restore.log" 2>&1
is "$?" 0 "restore from Azure exits 0" || tail -n 20 "$T/restore.log" | sed 's/^/# /'
table_sums "$P" > "$T/a"; table_sums "$Q" > "$T/b"
check "every table of the target equals the source" sh -c "diff '$T/a' '$T/b'"
is "$(wc -l < "$T/b")" "5" "five tables compared"

out=$("$RESTORE" verify --store "$URL" $EP 2>&1); rc=$?
is "$rc" 0 "verify passes on the Azure store"
like "$out" "all [0-9]+ segment\(s\) good" "verify read every segment"
out=$("$RESTORE" ls --store "$URL" $EP 2>&1); rc=$?
is "$rc" 0 "ls exits 0"
like "$out" "generation [0-9a-f]{16}" "ls names the generation"
like "$out" "[0-9]+ segments" "ls counts the segments"

# errors: wrong key, missing container, no credentials -------------------
BADKEY=$(head -c 64 /dev/urandom | base64 | tr -d '\n')
out=$(AZURE_STORAGE_KEY=$BADKEY "$RESTORE" ls --store "$URL" $EP 2>&1 >/dev/null); rc=$?
is "$rc" 1 "restore ls with a wrong key exits 1"
like "$out" "^logship-restore: store $URL: .*HTTP 403 AuthorizationFailure[: ].*check AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY" \
	"one line with the HTTP status, the service's code and what to check"
is "$(one_line "$out")" "1" "in one line"
out=$(AZURE_STORAGE_KEY=$BADKEY timeout 60 "$AGENT" --source "$SRC" --store "$URL" --init $EP --endpos "$END" 2>&1); rc=$?
is "$rc" 1 "the agent with a wrong key exits 1 (not retried)"
like "$out" "HTTP 403 AuthorizationFailure" "naming HTTP 403 and the code"
ok $(printf '%s' "$out" | grep -qF -- "$BADKEY"; [ $? -ne 0 ]; echo $?) "the key is never printed"
diag "$(printf '%s\n' "$out" | tail -n 1)"

out=$("$RESTORE" ls --store azure://nosuch/site1 $EP 2>&1 >/dev/null); rc=$?
is "$rc" 1 "a missing container exits 1"
like "$out" "^logship-restore: store azure://nosuch/site1: .*HTTP 404 ContainerNotFound.*create container \"nosuch\"" \
	"one line naming the container and what to do"
out=$(env -u AZURE_STORAGE_KEY "$RESTORE" ls --store "$URL" $EP 2>&1); rc=$?
like "$out" "set AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY" "no credentials: the variables are named"
out=$("$RESTORE" ls --store azure://Bad_Name/x $EP 2>&1); rc=$?
like "$out" "not an Azure container name" "a bad container name is refused before any request"

# block uploads ------------------------------------------------------------
B=azure://logship/blocks
head -c 3000001 /dev/urandom > "$T/big"
n0=$(az_requests "comp=block&")
LOGSHIP_AZURE_MULTIPART_THRESHOLD=1048576 LOGSHIP_AZURE_PART_SIZE=262144 \
	"$AZSTORE" "$AZ_ENDPOINT" put "$B" dir/big "$T/big"
ok $? "a 3 MB object put in 256 KiB blocks"
is "$(( $(az_requests "comp=block&") - n0 ))" "12" "as 12 Put Block requests"
"$AZSTORE" "$AZ_ENDPOINT" get "$B" dir/big > "$T/big.out"
check "it reads back byte-identical" cmp "$T/big" "$T/big.out"
is "$("$AZSTORE" "$AZ_ENDPOINT" head "$B" dir/big)" "3000001" "head gives its size"
"$AZSTORE" "$AZ_ENDPOINT" range "$B" dir/big 262000 1000 > "$T/range.out"
dd if="$T/big" bs=1000 skip=262 count=1 2>/dev/null > "$T/range.want"
check "a range across a block boundary reads right" cmp "$T/range.want" "$T/range.out"
is "$("$AZSTORE" "$AZ_ENDPOINT" range "$B" dir/big 3000001 10 | wc -c)" "0" "a range past the end reads nothing"

# an upload killed half way leaves nothing under the name
head -c 41943040 /dev/zero > "$T/huge"
LOGSHIP_AZURE_MULTIPART_THRESHOLD=1048576 LOGSHIP_AZURE_PART_SIZE=65536 \
	"$AZSTORE" "$AZ_ENDPOINT" put "$B" dir/killed "$T/huge" 2>/dev/null &
UPID=$!; track_pid $UPID
i=0; while [ "$(az_requests "dir/killed?comp=block&")" -lt 20 ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done
kill -9 $UPID 2>/dev/null; wait $UPID 2>/dev/null
ok $([ "$(az_requests "dir/killed?comp=blocklist")" -eq 0 ]; echo $?) "the upload was killed before its block list"
"$AZSTORE" "$AZ_ENDPOINT" head "$B" dir/killed >/dev/null 2>&1
is "$?" 4 "no object under the name of an uncommitted upload"

# put_if_absent ------------------------------------------------------------
echo first > "$T/first"; echo second > "$T/second"
"$AZSTORE" "$AZ_ENDPOINT" put-if-absent "$B" once "$T/first"
ok $? "put_if_absent creates a new blob"
out=$("$AZSTORE" "$AZ_ENDPOINT" put-if-absent "$B" once "$T/second" 2>&1); rc=$?
is "$rc" 3 "put_if_absent on an existing blob: exists"
like "$out" "HTTP 409 BlobAlreadyExists" "the service said BlobAlreadyExists"
is "$("$AZSTORE" "$AZ_ENDPOINT" get "$B" once)" "first" "the first content stays"
out=$(LOGSHIP_AZURE_MULTIPART_THRESHOLD=1048576 LOGSHIP_AZURE_PART_SIZE=262144 \
	"$AZSTORE" "$AZ_ENDPOINT" put-if-absent "$B" dir/big "$T/huge" 2>&1); rc=$?
is "$rc" 3 "put_if_absent in blocks on an existing blob: exists"
"$AZSTORE" "$AZ_ENDPOINT" get "$B" dir/big | cmp -s - "$T/big"
ok $? "and the blob is unchanged"
for w in 1 2; do
	LOGSHIP_AZURE_MULTIPART_THRESHOLD=100000 LOGSHIP_AZURE_PART_SIZE=300000 \
		"$AZSTORE" "$AZ_ENDPOINT" put-if-absent "$B" race "$T/big" 2>/dev/null &
	eval "RP$w=\$!"
done
wait $RP1; r1=$?; wait $RP2; r2=$?
is "$(echo $r1 $r2 | tr ' ' '\n' | sort | tr '\n' ' ')" "0 3 " "of two concurrent block uploads of one name, one wins, one gets exists"

# listing --------------------------------------------------------------------
L=azure://logship/list
for g in 0000000000000001 0000000000000002 0000000000000003; do
	pids=""
	for s in 1 2 3 4 5 6 7 8 9 a; do
		"$AZSTORE" "$AZ_ENDPOINT" put "$L" "$g/seg/000000000000000$s" "$T/first" &
		pids="$pids $!"
	done
	for p in $pids; do wait $p; done	# not a bare wait: Azurite is a child
done
"$AZSTORE" "$AZ_ENDPOINT" put "$L" logship.json "$T/first"
"$AZSTORE" "$AZ_ENDPOINT" put azure://logship/list2 0000000000000001/seg/x "$T/first"
"$AZSTORE" "$AZ_ENDPOINT" lsall "$L" "" > "$T/all"
is "$(wc -l < "$T/all")" "31" "31 keys listed, none of the neighbouring prefix"
check "in byte order" sh -c "LC_ALL=C sort -c '$T/all'"
n0=$(az_requests "comp=list")
"$AZSTORE" "$AZ_ENDPOINT" pages "$L" "" 4 > "$T/pages"
check "paging 4 at a time gives the same keys" cmp "$T/all" "$T/pages"
is "$(( $(az_requests "comp=list") - n0 ))" "8" "at one request per page (the marker of each page is kept)"
is "$("$AZSTORE" "$AZ_ENDPOINT" ls "$L" 0000000000000002/seg/ 0000000000000002/seg/0000000000000008 5 | cut -d' ' -f1 | tr '\n' ' ')" \
   "0000000000000002/seg/0000000000000009 0000000000000002/seg/000000000000000a " "start_after inside a prefix"
is "$("$AZSTORE" "$AZ_ENDPOINT" ls "$L" "" "0000000000000001/seg/0000000000000003x" 2 | tr '\n' ' ')" \
   "0000000000000001/seg/0000000000000004 6 0000000000000001/seg/0000000000000005 6 truncated " "start_after that is not a key; truncated"
is "$("$AZSTORE" "$AZ_ENDPOINT" gens "$L" | tr '\n' ' ')" \
   "0000000000000001 0000000000000002 0000000000000003 " "the catalog's generation hops"

# SAS tokens -------------------------------------------------------------------
SAS=$("$AZSTORE" "$AZ_ENDPOINT" sas rwdlac); RO=$("$AZSTORE" "$AZ_ENDPOINT" sas rl)
out=$(env -u AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN="?$SAS" "$RESTORE" verify --store "$URL" $EP 2>&1); rc=$?
is "$rc" 0 "verify with a SAS token (no key)"
env -u AZURE_STORAGE_KEY -u AZURE_STORAGE_ACCOUNT AZURE_STORAGE_SAS_TOKEN="$SAS" \
	LOGSHIP_AZURE_MULTIPART_THRESHOLD=1048576 LOGSHIP_AZURE_PART_SIZE=262144 \
	"$AZSTORE" "$AZ_ENDPOINT" put "$B" sas/big "$T/big"
ok $? "a block upload with a SAS token (no account, no key)"
"$AZSTORE" "$AZ_ENDPOINT" get "$B" sas/big | cmp -s - "$T/big"
ok $? "reads back byte-identical"
out=$(env -u AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN="$RO" "$AZSTORE" "$AZ_ENDPOINT" put "$B" sas/ro "$T/first" 2>&1); rc=$?
is "$rc" 1 "a read-only SAS token cannot write"
like "$out" "HTTP 403 AuthorizationPermissionMismatch.*AZURE_STORAGE_SAS_TOKEN" "saying so in one line"

# faults ---------------------------------------------------------------------
# flaky.py PORT UPSTREAM: every third request gets 503 ServerBusy without
# reaching Azurite; the first conditional PUT of each name reaches it but
# its answer is replaced by a 500; the first download of each blob is cut
# in the middle of its body.
cat > "$T/flaky.py" <<'PY'
import http.client, http.server, sys, threading
lock, count, seen = threading.Lock(), [0], set()

def fault(cmd, path, headers):
    with lock:
        count[0] += 1
        if count[0] % 3 == 1:
            return "busy"
        kind = None
        if cmd == "PUT" and headers.get("If-None-Match") and "comp=block&" not in path:
            kind = "lost"
        elif cmd == "GET" and "comp=" not in path:
            kind = "cut"
        if kind is None or (kind, path) in seen:
            return None
        seen.add((kind, path))
        return kind

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, status, code):
        msg = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
               '<Message>injected</Message></Error>' % code).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(msg)))
        self.send_header("x-ms-error-code", code)
        self.end_headers()
        self.wfile.write(msg)
    def relay(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        f = fault(self.command, self.path, self.headers)
        if f == "busy":
            return self.answer(503, "ServerBusy")
        c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
        c.request(self.command, self.path, body=body, headers={k: v for k, v in
                  self.headers.items() if k.lower() not in ("expect", "connection", "host")})
        r = c.getresponse()
        data = r.read()
        if f == "lost":
            return self.answer(500, "InternalError")
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", r.getheader("Content-Length") or str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if f == "cut" and len(data) > 1000:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)
    do_GET = do_PUT = do_HEAD = do_DELETE = relay

srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
srv.serve_forever()
PY
flaky_start() {	# on a free port (another may take it first: retried)
	command -v python3 >/dev/null 2>&1 || return 1
	for _try in 1 2 3 4 5; do
		FP=$(free_port)
		python3 "$T/flaky.py" "$FP" "$AZ_PORT" > "$T/flaky.log" 2>&1 &
		FPID=$!; track_pid $FPID
		i=0; while kill -0 $FPID 2>/dev/null && ! grep -q ready "$T/flaky.log" && [ $i -lt 100 ]; do
			sleep 0.1; i=$((i+1))
		done
		grep -q ready "$T/flaky.log" && return 0
		_pseed=$((_pseed + 7))
	done
	return 1
}
fault_tests() {
	export LOGSHIP_AZURE_DEADLINE_S=60	# a broken proxy must not cost 300 s a call
	FE="http://127.0.0.1:$FP/$AZ_ACCOUNT"
	R=azure://logship/flaky
	LOGSHIP_AZURE_MULTIPART_THRESHOLD=1048576 LOGSHIP_AZURE_PART_SIZE=262144 \
		"$AZSTORE" "$FE" put "$R" big "$T/big"
	ok $? "a block upload through 503s"
	az_sync; n0=$(grep -c '"x-ms-range":"bytes=1500000-","if-match"' "$AZ_DIR/debug.log")
	"$AZSTORE" "$FE" get "$R" big > "$T/flaky.big"
	check "a download cut in the middle reads back byte-identical" cmp "$T/big" "$T/flaky.big"
	az_sync
	is "$(( $(grep -c '"x-ms-range":"bytes=1500000-","if-match"' "$AZ_DIR/debug.log") - n0 ))" "1" \
		"it resumed from the bytes it had, if the ETag still matched"
	"$AZSTORE" "$FE" put-if-absent "$R" once "$T/first"
	ok $? "put_if_absent whose answer was lost: the blob carries our tag, so it is ours"
	"$AZSTORE" "$FE" put-if-absent "$R" once "$T/second" 2>/dev/null
	is "$?" 3 "a second put_if_absent still gets exists"
	"$AZSTORE" "$FE" pages "$L" "" 4 > "$T/pages2"
	check "listing through 503s gives every key" cmp "$T/all" "$T/pages2"
	unset LOGSHIP_AZURE_DEADLINE_S
}
if flaky_start; then fault_tests; else ok 0 "fault injection # SKIP no python3, or the proxy did not start"; fi

# the agent and restore through tests/tools/faultproxy: 500s, 503s, resets
# and stalls on about a quarter of the connections
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
proxy_round_trip() {
	"$FAULTPROXY" --upstream "127.0.0.1:$AZ_PORT" --seed 11 --p500 0.1 --p503 0.1 \
		--preset 0.05 --pstall 0.02 --stall-seconds 2 > "$T/fp.port" 2> "$T/fp.log" &
	track_pid $!
	i=0; until [ -s "$T/fp.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
	FEP="--azure-endpoint http://127.0.0.1:$(head -n 1 "$T/fp.port")/$AZ_ACCOUNT"
	U=azure://logship/faults
	"$AGENT" --source "$SRC" --store "$U" --init --slot faults $FEP --flush-interval 0.2 > "$T/fagent.log" 2>&1 &
	FAPID=$!; track_pid $FAPID
	i=0; until grep -qs "streaming generation" "$T/fagent.log" || [ $i -gt 900 ]; do sleep 0.1; i=$((i+1)); done
	"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 postgres >/dev/null 2>&1
	kill -TERM $FAPID; wait $FAPID
	FEND=$(psql_at "$P" -c "select pg_current_wal_lsn()")
	"$AGENT" --source "$SRC" --store "$U" --slot faults $FEP --endpos "$FEND" >> "$T/fagent.log" 2>&1
	ok $? "through the faults the agent stored everything up to $FEND" ||
		tail -n 20 "$T/fagent.log" | sed 's/^/# /'
	psql_at "$Q" -c "create database faults" >/dev/null
	"$RESTORE" --store "$U" $FEP --target "host=127.0.0.1 port=$Q user=postgres dbname=faults" \
		--state-dir "$T/st-faults" > "$T/frestore.log" 2>&1
	is "$?" 0 "restore through the faults exits 0" || tail -n 20 "$T/frestore.log" | sed 's/^/# /'
	table_sums "$P" > "$T/fa"; table_sums_db "$Q" faults > "$T/fb"
	check "every table restored through the faults equals the source" sh -c "diff '$T/fa' '$T/fb'"
	"$RESTORE" verify --store "$U" $FEP > "$T/fverify.log" 2>&1
	is "$?" 0 "verify through the faults passes"
	is "$(grep -cE "action=(500|503|reset|stall)" "$T/fp.log" | awk '{ print ($1 > 10) }')" "1" \
		"the proxy did inject faults ($(grep -cE "action=(500|503|reset|stall)" "$T/fp.log"))"
}
if [ -x "$FAULTPROXY" ]; then proxy_round_trip; else ok 0 "faultproxy round trip # SKIP tests/tools/faultproxy is not built"; fi

t0=$(date +%s)
out=$(LOGSHIP_AZURE_DEADLINE_S=2 "$AZSTORE" "http://127.0.0.1:1/$AZ_ACCOUNT" head "$B" dir/big 2>&1); rc=$?
is "$rc" 1 "an unreachable endpoint fails"
like "$out" "head dir/big: .*Couldn.t connect.*\(gave up retrying\)" "after retrying until the deadline"
ok $([ $(( $(date +%s) - t0 )) -lt 10 ]; echo $?) "soon after a 2 s deadline"

ok $(! grep -qs -E "Sanitizer|runtime error" "$T"/*.log; echo $?) "no sanitizer reports from the agent and restore"

done_testing
