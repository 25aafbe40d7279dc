#!/bin/sh
# The inspection commands on stores written by the segment writer:
# ls, verify (good, corrupt, gap, tampered chain, encrypted), cat NDJSON,
# and the one-line errors for bad URLs and key files; every store option on
# every command that opens a store (ls, verify, cat, mirror, the restore).
. "$(dirname "$0")/lib.sh"

S="$T/store"
"$MKSTORE" "$S" 4 >/dev/null 2>&1
ok $? "mkstore wrote 4 segments"

out=$("$RESTORE" ls --store "$S" 2>&1); rc=$?
is "$rc" 0 "ls exits 0"
like "$out" "generation 0000000100000001" "ls names the generation"
like "$out" "0000000000000004 +0/4000 +0/4200 +2025-11-21T" "ls shows a segment's LSN and commit-time range"
like "$out" "4 segments" "ls counts the segments"

out=$("$RESTORE" verify --store "file://$S" 2>&1); rc=$?
is "$rc" 0 "verify passes on a good store (file:// URL)"
like "$out" "all 4 segment\(s\) good" "verify says all good"

"$RESTORE" cat --store "$S" --format ndjson > "$T/cat.json"; rc=$?
is "$rc" 0 "cat exits 0"
is "$(jq -c 'select(.type=="header") | .segno' "$T/cat.json" | tr '\n' ' ')" "1 2 3 4 " "cat prints a header line per segment"
is "$(head -n 1 "$T/cat.json" | jq -r .type)" "header" "first line is the header"
is "$(jq -s 'map(select(.type=="begin")) | length' "$T/cat.json")" "12" "12 transactions"
is "$(jq -c 'select(.type=="insert") | .new' "$T/cat.json" | head -n 1)" \
   '{"id":"10","note":"","raw":{"base64":"AP7/"}}' "text, empty text and binary (base64) values"
is "$(jq -c 'select(.type=="update") | [.old.note, .new.raw]' "$T/cat.json" | head -n 1)" \
   '[null,{"unchanged_toast":true}]' "NULL and unchanged TOAST stay distinct"
is "$("$RESTORE" cat --store "$S" 0000000000000002 | jq -r 'select(.type=="header") | .segno')" "2" "cat SEGNO picks one segment"

# corruption: flip one byte in segment 3
cp -r "$S" "$T/bad"
seg3="$T/bad/0000000100000001/seg/0000000000000003"
printf '\377' | dd of="$seg3" bs=1 seek=200 conv=notrunc 2>/dev/null
out=$("$RESTORE" verify --store "$T/bad" 2>&1); rc=$?
is "$rc" 1 "verify exits 1 on a corrupt segment"
like "$out" "BAD segment 0000000000000003: " "verify names the corrupt segment"
like "$out" "3 good segment" "the other segments are still checked"
out=$("$RESTORE" cat --store "$T/bad" 3 2>&1 >/dev/null); rc=$?
is "$rc" 1 "cat of a corrupt segment exits 1"
like "$out" "segment 0000000000000003" "cat names the corrupt segment"

# a gap: remove segment 2
cp -r "$S" "$T/gap"
rm "$T/gap/0000000100000001/seg/0000000000000002"
out=$("$RESTORE" verify --store "$T/gap" 2>&1); rc=$?
is "$rc" 1 "verify exits 1 on a gap"
like "$out" "segment 0000000000000002 is missing" "verify reports the missing segment"

# a segment from another store at the same number breaks the chain
"$MKSTORE" "$T/other" 3 >/dev/null 2>&1
cp -r "$S" "$T/chain"
cp "$T/other/0000000100000001/seg/0000000000000003" "$T/chain/0000000100000001/seg/"
out=$("$RESTORE" verify --store "$T/chain" 2>&1); rc=$?
is "$rc" 1 "verify exits 1 on a broken chain"
like "$out" "segment 0000000000000004: hash chain broken.*segment 0000000000000003" \
	"the chain break names both segments"

# encryption
head -c 32 /dev/urandom > "$T/key"
od -An -tx1 /dev/urandom | head -n 2 | tr -d ' \n' | head -c 64 > "$T/key2"
chmod 600 "$T/key" "$T/key2"	# key files others may read are refused
"$MKSTORE" "$T/enc" 2 "$T/key" >/dev/null 2>&1
out=$("$RESTORE" verify --store "$T/enc" --key-file "$T/key" 2>&1); rc=$?
is "$rc" 0 "encrypted store verifies with its key"
out=$("$RESTORE" verify --store "$T/enc" --key-file "$T/key2" 2>&1); rc=$?
is "$rc" 1 "wrong key fails verify"
like "$out" "wrong --key-file" "the message says the key is wrong"
out=$("$RESTORE" verify --store "$T/enc" 2>&1); rc=$?
is "$rc" 1 "missing key fails verify"
is "$("$RESTORE" cat --store "$T/enc" --key-file "$T/key" | jq -s 'map(select(.type=="commit")) | length')" \
   "6" "cat decrypts with the key"

# bad input: one line, exit 2
out=$("$RESTORE" ls --store "ftp://host/x" 2>&1); rc=$?
is "$rc" 2 "unknown URL scheme exits 2"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" "1" "with a one-line error"
like "$out" "ftp" "naming the scheme"
out=$("$RESTORE" verify --store "$S" --key-file "$T/nonexistent" 2>&1); rc=$?
is "$rc" 2 "unreadable key file exits 2"
like "$out" "key file .*nonexistent" "naming the key file"
printf 'short' > "$T/shortkey"; chmod 600 "$T/shortkey"
out=$("$RESTORE" verify --store "$S" --key-file "$T/shortkey" 2>&1); rc=$?
is "$rc" 2 "malformed key file exits 2"
out=$("$RESTORE" verify 2>&1); rc=$?
is "$rc" 2 "missing --store exits 2"

# not a logship store: exit 1 with what was expected, never "all 0 good"
out=$("$RESTORE" ls --store "$T/nosuch" 2>&1); rc=$?
is "$rc" 1 "ls on a path that does not exist exits 1"
like "$out" "^logship-restore: store $T/nosuch holds no logship.json: not a logship store" "saying what was expected"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" "1" "in one line"
out=$("$RESTORE" verify --store "$T/nosuch" 2>&1); rc=$?
is "$rc" 1 "verify on a path that does not exist exits 1"
like "$out" "holds no logship.json: not a logship store" "saying what was expected"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" "1" "in one line"
test ! -e "$T/nosuch"; ok $? "and creates nothing there"
mkdir -p "$T/plain/0000000100000001/seg"
cp "$S/0000000100000001/seg/0000000000000001" "$T/plain/0000000100000001/seg/"
out=$("$RESTORE" verify --store "$T/plain" 2>&1); rc=$?
is "$rc" 0 "segments without logship.json (a partial mirror copy) still verify"
like "$out" "note: store $T/plain holds no logship.json but has generations" "with a note"
mkdir "$T/nogen"
cp "$S/logship.json" "$T/nogen/"
out=$("$RESTORE" ls --store "$T/nogen" 2>&1); rc=$?
is "$rc" 1 "ls of a store without generations exits 1"
like "$out" "store $T/nogen holds no generation yet" "saying so"
out=$("$RESTORE" verify --store "$T/nogen" 2>&1); rc=$?
is "$rc" 1 "verify of a store without generations exits 1"
out=$("$RESTORE" verify --store "$S" --generation 00000001000000ff 2>&1); rc=$?
is "$rc" 1 "verify of a generation the store lacks exits 1"
like "$out" "holds no generation 00000001000000ff" "naming it"

# store options ------------------------------------------------------------
# Every command that opens a store takes every store option; on a
# directory store they change nothing.
printf '[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s\n' > "$T/s3creds"
chmod 600 "$T/s3creds"
ALLOPTS="--s3-endpoint http://127.0.0.1:1 --s3-region eu-west-1 --s3-uri-style path
	--s3-ca-file $T/ca.pem --s3-credentials-file $T/s3creds
	--azure-endpoint http://127.0.0.1:1/acct --azure-ca-file $T/ca.pem
	--gcs-endpoint http://127.0.0.1:1 --gcs-ca-file $T/ca.pem"
for c in ls verify cat; do
	"$RESTORE" $c --store "$S" > "$T/plain.out" 2>&1
	"$RESTORE" $c --store "$S" $ALLOPTS > "$T/opts.out" 2>&1; rc=$?
	is "$rc" 0 "$c takes every store option"
	cmp -s "$T/plain.out" "$T/opts.out"; ok $? "$c: the same output on a directory store"
done
"$RESTORE" mirror --from "$S" --to "$T/mirror-opts" $ALLOPTS >/dev/null 2>&1
ok $? "mirror takes every store option"
cmp -s "$S/logship.json" "$T/mirror-opts/logship.json"
ok $? "and copies the store (its base-less segments wait, as ever)"
out=$("$RESTORE" --store "$S" --target "host=127.0.0.1 port=1 user=x dbname=x" \
    --state-dir "$T/st-opts" $ALLOPTS 2>&1); rc=$?
is "$rc" 1 "the restore takes every store option (and then finds no target)"
like "$out" "cannot connect to the target" "saying so"
for c in ls verify cat mirror idmap ""; do
	out=$("$RESTORE" $c --s3-no-such-option x 2>&1); rc=$?
	is "$rc" 2 "${c:-the restore}: an unknown option is a usage error"
	like "$out" 'Try "logship-restore --help"\.$' "pointing to --help"
done

# The cloud options reach their backends: with an https endpoint (any port
# that accepts a connection) and a CA file that does not exist, the first
# request fails, naming the CA file, and nothing is read.
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
"$FAULTPROXY" --upstream 127.0.0.1:1 > "$T/fp.port" 2>/dev/null &
track_pid $!
i=0; until [ -s "$T/fp.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
HTTPS="https://127.0.0.1:$(head -n 1 "$T/fp.port")"
unset STORAGE_EMULATOR_HOST GOOGLE_APPLICATION_CREDENTIALS AWS_ACCESS_KEY_ID \
    AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AZURE_STORAGE_SAS_TOKEN
export LOGSHIP_GCS_ANONYMOUS=1 AZURE_STORAGE_ACCOUNT=acct \
    AZURE_STORAGE_KEY="$(printf 'logship-test-key' | base64)"

# ca_fails CAFILE URL OPTION...: each command on that store fails so.  (An
# option lost on the way would have them retry TLS handshakes with the
# proxy for minutes: timeout cuts that short.)
ca_fails() {
	_ca=$1; shift
	for c in ls verify cat; do
		out=$(timeout 20 "$RESTORE" $c --store "$@" 2>&1); rc=$?
		is "$rc" 1 "$c $1: a CA file that does not exist exits 1"
		like "$out" "$_ca" "naming it"
	done
	out=$(timeout 20 "$RESTORE" mirror --to "$T/mirror-ca" --from "$@" 2>&1)
	rc=$?
	is "$rc" 1 "mirror --from $1: the same"
	like "$out" "$_ca" "naming it"
	out=$(timeout 20 "$RESTORE" --target "host=127.0.0.1 port=1" \
	    --state-dir "$T/st-$(basename "$_ca")" --store "$@" 2>&1); rc=$?
	is "$rc" 2 "the restore from $1 exits 2 before it connects the target"
	like "$out" "$_ca" "naming it"
}
ca_fails "$T/no-s3-ca.pem" s3://bkt/p --s3-endpoint "$HTTPS" \
    --s3-uri-style path --s3-credentials-file "$T/s3creds" \
    --s3-ca-file "$T/no-s3-ca.pem"
ca_fails "$T/no-azure-ca.pem" azure://cont/p --azure-endpoint "$HTTPS/acct" \
    --azure-ca-file "$T/no-azure-ca.pem"
ca_fails "$T/no-gcs-ca.pem" gcs://bkt/p --gcs-endpoint "$HTTPS" \
    --gcs-ca-file "$T/no-gcs-ca.pem"
test ! -e "$T/mirror-ca"; ok $? "and mirror wrote nothing"

done_testing
