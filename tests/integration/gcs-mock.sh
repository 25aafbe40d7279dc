#!/bin/sh
# The GCS backend's requests, offline, against tests/tools/gcs_mock.py: a
# MOCK of the GCS JSON API, used only because no GCS server that checks
# credentials runs offline here (tests/integration/gcs.sh is the test
# against a real JSON-API server).  The mock is strict about what it
# checks: percent-encoded object names, media and resumable uploads
# (Content-Range arithmetic, 256 KiB chunks, 308 + Range, status
# queries), ifGenerationMatch=0, Range reads, list paging, and the OAuth
# exchange: the JWT's RS256 signature is verified with the public key
# (openssl) and every storage request must carry a token it issued.
#  - every call's URL and headers; media vs resumable by size
#  - retries (503, lost answers, broken sessions, short commits), one token
#    refresh after a 401, the deadline
#  - a lost answer to put_if_absent followed by 412 is recognised as ours
#  - concurrent put_if_absent: exactly one winner
#  - errors are one line and never hold the key or a token
. "$(dirname "$0")/lib.sh"

GCSCTL="${GCSCTL:-$top_builddir/tests/tools/gcsctl}"
MOCK="$top_srcdir/tests/tools/gcs_mock.py"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3) || skip_all "python3 not found"
command -v openssl >/dev/null || skip_all "openssl not found"
unset STORAGE_EMULATOR_HOST LOGSHIP_GCS_ANONYMOUS

# mock_start NAME [ARGS]: sets ${NAME}_PORT; its request log is $T/NAME.log
mock_start() {
	_m=$1; shift
	"$PY" "$MOCK" --port-file "$T/$_m.port" --log "$T/$_m.log" "$@" 2>"$T/$_m.err" &
	track_pid $!
	i=0; while [ ! -s "$T/$_m.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	[ -s "$T/$_m.port" ] || { cat "$T/$_m.err"; echo "Bail out! mock $_m did not start"; exit 1; }
	eval "${_m}_PORT=$(cat "$T/$_m.port")"
}
reqs() { grep -c "$1" "$T/gcs.log"; }	# requests so far matching a pattern
mark() { : > "$T/gcs.log"; }		# forget the requests so far
ctl() {	# ctl WHAT?ARGS: a fault or action of the mock (see gcs_mock.py)
	"$PY" -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="POST"))' \
	    "http://127.0.0.1:$gcs_PORT/_mock/$1"
}
G() { "$GCSCTL" "$@" 2>>"$T/stderr"; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/key.pem" 2>/dev/null
openssl pkey -in "$T/key.pem" -pubout -out "$T/pub.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.pem" 2>/dev/null
mock_start gcs --bucket bkt --pubkey "$T/pub.pem" --page-max 7
mkkey() {	# mkkey PEM FILE: a service-account key file for the mock
	jq -n --rawfile k "$1" --arg u "http://127.0.0.1:$gcs_PORT/token" \
	    '{type:"service_account", project_id:"demo", private_key_id:"k1",
	      private_key:$k, client_email:"sa@demo.iam.gserviceaccount.com",
	      token_uri:$u}' > "$2"
	chmod 600 "$2"	# key files others may read are refused
}
mkkey "$T/key.pem" "$T/sa.json"
mkkey "$T/other.pem" "$T/wrong.json"
export GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json"
E="-e http://127.0.0.1:$gcs_PORT"
U="gcs://bkt/pre/fix"
head -c 1000 /dev/urandom > "$T/small"
head -c 1300000 /dev/urandom > "$T/big"	# 4 chunks of 256 KiB + 251424

# --- media upload, get, head, range, names ----------------------------
mark
G $E $U put "seg/0001" "$T/small"; ok $? "put a small object"
is "$(reqs '"path": "/token"')" 1 "one token request"
is "$(grep -c '"path": "/upload/storage/v1/b/bkt/o", "q": "uploadType=media&name=pre%2Ffix%2Fseg%2F0001", "auth": "Bearer"' "$T/gcs.log")" 1 \
   "media upload: POST /upload/storage/v1/b/bkt/o?uploadType=media&name=<encoded>, with a bearer token"
G $E $U get "seg/0001" > "$T/out"; ok $? "get it"
check "the same bytes come back" cmp "$T/out" "$T/small"
like "$(grep alt=media "$T/gcs.log")" '"path": "/storage/v1/b/bkt/o/pre%2Ffix%2Fseg%2F0001", "q": "alt=media"' \
   "get: GET /storage/v1/b/bkt/o/<name with %2F>?alt=media"
is "$(G $E $U head seg/0001)" 1000 "head: the size"
G $E $U range seg/0001 10 20 > "$T/out"
check "range: 20 bytes at 10" sh -c "dd if='$T/small' bs=1 skip=10 count=20 2>/dev/null | cmp - '$T/out'"
like "$(grep '"range": "bytes=10-29"' "$T/gcs.log")" alt=media "range: Range: bytes=10-29"
is "$(G $E $U range seg/0001 990 100 | wc -c)" 10 "range: a read across the end is short"
is "$(G $E $U range seg/0001 5000 10 | wc -c)" 0 "range: a read past the end is empty"
WEIRD='dir/sp ace+plus%pct&amp?q#h=é'
G $E $U put "$WEIRD" "$T/small" && G $E $U get "$WEIRD" | cmp -s - "$T/small"
ok $? "a key with space, + % & ? # = and UTF-8 round-trips"
like "$(grep -F 'sp%20ace%2Bplus%25pct%26amp%3Fq%23h%3D%C3%A9' "$T/gcs.log" | head -n 1)" upload \
   "and is percent-encoded in the name"
G $E $U head nosuch; is "$?" 1 "head of an absent key fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: not found: store gcs://bkt/pre/fix: head nosuch: HTTP 404" "as notfound"

# --- put_if_absent ----------------------------------------------------
mark
G $E $U put-new seg/0002 "$T/small"; ok $? "put_if_absent of a new key"
like "$(cat "$T/gcs.log")" "ifGenerationMatch=0" "sends ifGenerationMatch=0"
G $E $U put-new seg/0002 "$T/big"; is "$?" 1 "put_if_absent of an existing key fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: exists: .*put_if_absent seg/0002: HTTP 412" "as exists (412)"
ctl "drop?match=POST%20/upload&count=1"
mark
G $E $U put-new seg/0003 "$T/small"; ok $? "a lost answer, retried, then 412: our own object, success"
is "$(reqs '"q": "fields=size,md5Hash"')" 1 "(decided by the object's MD5)"
ctl "drop?match=POST%20/upload&count=1"
G $E $U put-new seg/0003 "$T/big"; is "$?" 1 "but another object already there is still reported"
mark
is "$(G $E $U race 6 race/key "$T/small")" "won 1 exists 5 failed 0" "6 threads, one store: exactly one put_if_absent wins"
is "$(reqs '"path": "/token"')" 1 "with one token for all six threads"

# --- resumable uploads ------------------------------------------------
R="$E -t 1000000 -p 300000"	# above 1 MB: resumable, 256 KiB chunks
mark
G $R $U put big/1 "$T/big"; ok $? "put above the threshold"
like "$(grep uploadType=resumable "$T/gcs.log")" '"m": "POST", "path": "/upload/storage/v1/b/bkt/o", "q": "uploadType=resumable&name=pre%2Ffix%2Fbig%2F1", "auth": "Bearer".*"xlen": "1300000"' \
   "starts a resumable session with X-Upload-Content-Length"
is "$(grep -o '"crange": "[^"]*"' "$T/gcs.log" | tr '\n' ' ')" \
   '"crange": "bytes 0-262143/1300000" "crange": "bytes 262144-524287/1300000" "crange": "bytes 524288-786431/1300000" "crange": "bytes 786432-1048575/1300000" "crange": "bytes 1048576-1299999/1300000" ' \
   "in 256 KiB chunks (part size rounded down) with Content-Range"
G $E $U get big/1 | cmp -s - "$T/big"; ok $? "the object is whole"
ctl "fail?match=PUT%20/upload&count=2&status=503"
mark
G $R $U put big/2 "$T/big"; ok $? "a chunk answered 503 twice"
like "$(grep -c '"crange": "bytes \*/1300000"' "$T/gcs.log")" '^[12]$' "is followed by a status query (bytes */N)"
G $E $U get big/2 | cmp -s - "$T/big"; ok $? "and the object is whole"
ctl "short?match=PUT%20/upload&count=1&short=100000"
mark
G $R $U put big/3 "$T/big" && G $E $U get big/3 | cmp -s - "$T/big"
ok $? "a chunk the server took only part of: the rest is sent again"
like "$(cat "$T/gcs.log")" '"crange": "bytes 162144-' "from the byte its 308 Range named"
ctl "fail?match=PUT%20/upload&count=1&status=503"
G $R $U put big/4 "$T/big" && G $E $U get big/4 | cmp -s - "$T/big"
ok $? "an upload whose first chunk failed"
ctl "fail?match=PUT%20/upload&skip=2&count=1&status=410"
mark
G $R $U put big/5 "$T/big" && G $E $U get big/5 | cmp -s - "$T/big"
ok $? "an upload whose session is gone (410) half way"
is "$(reqs 'uploadType=resumable&name=pre%2Ffix%2Fbig%2F5", "auth"')" 2 "starts a new session"
G $R $U put-new big/1 "$T/big"; is "$?" 1 "resumable put_if_absent of an existing key fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: exists: " "as exists"

# --- list --------------------------------------------------------------
for i in 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20; do
	G $E $U put "l/k$i" "$T/small" || break
done
G $E $U put "l/k10/sub" "$T/small"; G $E $U put "lz" "$T/small"
mark
G $E $U ls l/ "" 100 > "$T/ls"
is "$(wc -l < "$T/ls")" 21 "list a prefix: every key under it (server pages of 7)"
is "$(head -n 1 "$T/ls")" "l/k01 1000" "keys relative to the store prefix, with sizes"
check "in byte order" sh -c "cut -d' ' -f1 '$T/ls' | LC_ALL=C sort -c"
like "$(cat "$T/gcs.log")" 'prefix=pre%2Ffix%2Fl%2F&maxResults=101&fields' "prefix and maxResults (one more than max)"
like "$(cat "$T/gcs.log")" 'prefix=pre%2Ffix%2Fl%2F&maxResults=94&pageToken=' "the next page with pageToken"
G $E $U ls l/ l/k10 5 > "$T/ls"
is "$(tr '\n' ' ' < "$T/ls")" "l/k10/sub 1000 l/k11 1000 l/k12 1000 l/k13 1000 l/k14 1000 truncated " \
   "after a key, at most max, and truncated"
like "$(cat "$T/gcs.log")" 'startOffset=pre%2Ffix%2Fl%2Fk10&' "startOffset (inclusive) is sent, the key itself left out"
is "$(G $E $U ls l/ l/k20 5)" "" "after the last key: nothing, not truncated"
is "$(G $E $U ls nothing/ "" 5)" "" "an empty prefix lists nothing"

# --- delete -----------------------------------------------------------
G $E $U del l/k01; ok $? "delete"
G $E $U head l/k01 2>/dev/null; is "$?" 1 "it is gone"
G $E $U del l/k01; ok $? "deleting an absent key is not an error"

# --- retries, tokens, errors -----------------------------------------
ctl "fail?match=POST%20/upload&count=2&status=503"
mark
G $E $U put r/1 "$T/small"; ok $? "503 twice, then success"
is "$(reqs '"path": "/upload')" 3 "three attempts"
ctl "fail?match=GET%20/storage&count=1&status=429"
G $E $U get r/1 | cmp -s - "$T/small"; ok $? "429 is retried"
ctl "fail?match=GET%20/storage&count=1&status=401"
mark
G $E $U get r/1 | cmp -s - "$T/small"; ok $? "a token refused (401): one new token, success"
is "$(reqs '"path": "/token"')" 2 "two tokens in that call"
ctl "fail?match=GET%20/storage&count=2&status=401"
G $E $U head r/1; is "$?" 1 "refused again with the new token: fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: authentication failed: .*HTTP 401 injected" "as auth"
ctl "fail?match=GET%20/storage&count=100&status=503"
t0=$(date +%s)
G $E -d 3 $U head r/1; is "$?" 1 "503 for ever: fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: transient error: store gcs://bkt/pre/fix: head r/1: gave up after [0-9]+ attempts in 3 s: HTTP 503 injected" \
   "as transient, after the deadline, with the last answer"
is "$(( $(date +%s) - t0 < 8 ))" 1 "within the deadline"
ctl clear
ctl "fail?match=GET%20/storage&count=1&status=403"
G $E $U head r/2; is "$?" 1 "403 fails at once"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: authentication failed: store gcs://bkt/pre/fix: head r/2: HTTP 403 injected: injected failure; service account sa@demo.iam.gserviceaccount.com needs roles/storage" \
   "as auth, in one line with the status, reason, message and account"
GOOGLE_APPLICATION_CREDENTIALS="$T/wrong.json" G $E $U head r/1; is "$?" 1 "a key the server does not know fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: authentication failed: .*HTTP 400 invalid_grant: Invalid JWT Signature" \
   "as auth: the token endpoint's invalid_grant"
G -e http://storage.example.com $U head r/1; is "$?" 1 "credentials over plain http to another host are refused"
GOOGLE_APPLICATION_CREDENTIALS= G $E $U head r/1; is "$?" 1 "no credentials and no emulator: refused"
like "$(tail -n 1 "$T/stderr")" "GOOGLE_APPLICATION_CREDENTIALS" "saying what to set"
check "no error message holds the private key or a token" sh -c \
   "! grep -E 'PRIVATE|ya29|Bearer|MII' '$T/stderr'"
check "every error message is one line starting gcsctl:" sh -c \
   "! grep -v '^gcsctl: \|^20[0-9-]*T' '$T/stderr'"

# --- emulator mode: no Authorization header ---------------------------
mock_start emu --bucket bkt
STORAGE_EMULATOR_HOST="127.0.0.1:$emu_PORT" G $U put e/1 "$T/small" 2>/dev/null
ok $? "STORAGE_EMULATOR_HOST: the emulator is the endpoint"
is "$(grep -c '"auth": null' "$T/emu.log")" "$(wc -l < "$T/emu.log")" "and no Authorization header is sent"
GOOGLE_APPLICATION_CREDENTIALS= LOGSHIP_GCS_ANONYMOUS=1 G -e "http://127.0.0.1:$emu_PORT" $U get e/1 2>/dev/null | cmp -s - "$T/small"
ok $? "LOGSHIP_GCS_ANONYMOUS=1 without a key file: anonymous too"
is "$(grep -c '/token' "$T/emu.log")" 0 "no token is fetched"
done_testing
