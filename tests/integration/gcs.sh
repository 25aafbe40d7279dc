#!/bin/sh
# The GCS backend against a real GCS JSON-API server, and the round trip
# agent -> gcs:// -> restore through it.  The server is, in this order:
#  - LOGSHIP_GCS_TEST_ENDPOINT + LOGSHIP_GCS_TEST_BUCKET from the environment:
#    Google's endpoint with GOOGLE_APPLICATION_CREDENTIALS, or an emulator
#    with STORAGE_EMULATOR_HOST or LOGSHIP_GCS_ANONYMOUS=1 (set
#    LOGSHIP_GCS_TEST_LIMITED=1 if it ignores ifGenerationMatch or chunked
#    resumable uploads).  Objects go under a fresh prefix, deleted at the end.
#  - FIREBASE_TOOLS_DIR, a directory where `npm install firebase-tools` ran:
#    its Cloud Storage emulator, started here (tests/tools/
#    gcs_firebase_emu.js).  It checks no credentials, ignores
#    ifGenerationMatch and ends a resumable upload at its first PUT, so those
#    checks are skipped, saying so.
# Without either the test is skipped: no GCS server runs offline here.
# The request building itself is tested offline by gcs-mock.sh.
. "$(dirname "$0")/lib.sh"

GCSCTL="${GCSCTL:-$top_builddir/tests/tools/gcsctl}"
skip() { _n=$((_n + 1)); echo "ok $_n # SKIP $*"; }
LIMITED="${LOGSHIP_GCS_TEST_LIMITED:-}"

if [ -n "${LOGSHIP_GCS_TEST_ENDPOINT:-}" ] && [ -n "${LOGSHIP_GCS_TEST_BUCKET:-}" ]; then
	EP=$LOGSHIP_GCS_TEST_ENDPOINT; BUCKET=$LOGSHIP_GCS_TEST_BUCKET
	diag "server: $EP bucket $BUCKET (from the environment)"
elif [ -n "${FIREBASE_TOOLS_DIR:-}" ] && [ -d "$FIREBASE_TOOLS_DIR/node_modules/firebase-tools" ]; then
	port=$(free_port)
	NODE_PATH="$FIREBASE_TOOLS_DIR/node_modules" node "$top_srcdir/tests/tools/gcs_firebase_emu.js" \
	    "$port" > "$T/emu.log" 2>&1 &
	track_pid $!
	i=0; until grep -q listening "$T/emu.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
	grep -q listening "$T/emu.log" || { sed 's/^/# /' "$T/emu.log"; echo "Bail out! the firebase storage emulator did not start"; exit 1; }
	EP="http://127.0.0.1:$port"; BUCKET=logship-test; LIMITED=firebase
	export STORAGE_EMULATOR_HOST="127.0.0.1:$port"
	diag "server: firebase-tools storage emulator on $EP (no credentials checked)"
else
	skip_all "no GCS JSON-API server: no GCS server that checks credentials runs offline here; set LOGSHIP_GCS_TEST_ENDPOINT and LOGSHIP_GCS_TEST_BUCKET (with GOOGLE_APPLICATION_CREDENTIALS, or STORAGE_EMULATOR_HOST for an emulator), or FIREBASE_TOOLS_DIR to a directory where 'npm install firebase-tools' ran"
fi
[ -x "$GCSCTL" ] || skip_all "$GCSCTL not built"

PREFIX="logship-test-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
U="gcs://$BUCKET/$PREFIX"
G() { "$GCSCTL" -e "$EP" -d 60 "$@" 2>>"$T/stderr"; }
gcs_cleanup() {	# delete what this run stored
	"$GCSCTL" -e "$EP" -d 10 "$U" ls "" "" 100000 2>/dev/null | while read -r k _; do
		[ "$k" = truncated ] || "$GCSCTL" -e "$EP" -d 10 "$U" del "$k" 2>/dev/null
	done
}
trap 'gcs_cleanup; cleanup' EXIT
head -c 1000 /dev/urandom > "$T/small"
head -c 1300000 /dev/urandom > "$T/big"

# --- the calls ------------------------------------------------------------
G "$U" put "seg/0001" "$T/small"; ok $? "media upload"
G "$U" get "seg/0001" | cmp -s - "$T/small"; ok $? "get returns the same bytes"
is "$(G "$U" head seg/0001)" 1000 "head gives the size"
G "$U" range seg/0001 10 20 > "$T/out"
check "range: 20 bytes at 10" sh -c "dd if='$T/small' bs=1 skip=10 count=20 2>/dev/null | cmp - '$T/out'"
is "$(G "$U" range seg/0001 5000 10 | wc -c)" 0 "range past the end: empty"
WEIRD='dir/sp ace+plus%pct&amp=é'
G "$U" put "$WEIRD" "$T/small" && G "$U" get "$WEIRD" | cmp -s - "$T/small"
ok $? "a key with space, + % & = and UTF-8 round-trips"
G "$U" head nosuch 2>/dev/null; is "$?" 1 "head of an absent key fails"
like "$(tail -n 1 "$T/stderr")" "^gcsctl: not found: " "as not found"
G -t 1000000 -p 4000000 "$U" put big/1 "$T/big" && G "$U" get big/1 | cmp -s - "$T/big"
ok $? "a resumable upload in one chunk"
if [ -n "$LIMITED" ]; then
	skip "resumable upload in 256 KiB chunks: this server ends a session at its first PUT"
	skip "put_if_absent of an existing key: this server ignores ifGenerationMatch"
	skip "concurrent put_if_absent: this server ignores ifGenerationMatch"
else
	G -t 1000000 -p 262144 "$U" put big/2 "$T/big" && G "$U" get big/2 | cmp -s - "$T/big"
	ok $? "a resumable upload in 256 KiB chunks"
	G "$U" put-new seg/0001 "$T/small"; is "$?" 1 "put_if_absent of an existing key fails"
	is "$(G "$U" race 4 race/1 "$T/small")" "won 1 exists 3 failed 0" "concurrent put_if_absent: one winner"
fi
G "$U" put-new seg/0002 "$T/small"; ok $? "put_if_absent of a new key"
for i in 01 02 03 04 05 06 07 08 09 10 11 12; do G "$U" put "l/k$i" "$T/small" || break; done
G "$U" ls l/ "" 5 > "$T/ls"
is "$(tr '\n' ' ' < "$T/ls")" "l/k01 1000 l/k02 1000 l/k03 1000 l/k04 1000 l/k05 1000 truncated " "list: a page of 5, truncated"
G "$U" ls l/ l/k05 100 > "$T/ls"
is "$(head -n 1 "$T/ls") $(wc -l < "$T/ls")" "l/k06 1000 7" "list after a key: the rest, not truncated"
G "$U" del l/k01 && ! G "$U" head l/k01 2>/dev/null; ok $? "delete"
G "$U" del l/k01; ok $? "deleting an absent key is not an error"

# --- round trip: agent -> gcs:// -> restore -------------------------------
out=$("$RESTORE" cat --store "$U/probe" --gcs-endpoint "$EP" 2>&1)
if printf '%s\n' "$out" | grep -q "unknown URL scheme"; then
	skip "round trip: gcs:// is not in store_open's scheme table in this build"
	done_testing
fi
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
SRC="host=127.0.0.1 port=$src_PORT user=postgres dbname=postgres"
S="$U/rt"
psql_at "$src_PORT" >/dev/null <<'SQL'
CREATE TABLE items (id int PRIMARY KEY, note text, raw bytea);
INSERT INTO items SELECT g, md5(g::text), decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;
CREATE TABLE big (id int PRIMARY KEY, pad text);
INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g;
SQL
lsn() { psql_at "$src_PORT" -c "select pg_current_wal_lsn()"; }
"$AGENT" --source "$SRC" --store "$S" --init --gcs-endpoint "$EP" --endpos "$(lsn)" > "$T/agent.log" 2>&1
ok $? "agent: base snapshot into $S" || tail -n 20 "$T/agent.log" | sed 's/^/# /'
psql_at "$src_PORT" >/dev/null <<'SQL'
UPDATE items SET note = 'changed' WHERE id % 7 = 0;
DELETE FROM items WHERE id % 11 = 0;
INSERT INTO big SELECT g, 'later' FROM generate_series(20001, 30000) g;
SQL
"$AGENT" --source "$SRC" --store "$S" --init --gcs-endpoint "$EP" --endpos "$(lsn)" >> "$T/agent.log" 2>&1
ok $? "agent: changes streamed into $S" || tail -n 20 "$T/agent.log" | sed 's/^/# /'
psql_at "$dst_PORT" -c "create database rt" >/dev/null
"$RESTORE" --store "$S" --gcs-endpoint "$EP" --target "host=127.0.0.1 port=$dst_PORT user=postgres dbname=rt" \
    --state-dir "$T/st" > "$T/restore.log" 2>&1
ok $? "restore from $S" || tail -n 20 "$T/restore.log" | sed 's/^/# /'
diag "$(grep -o 'summary:.*' "$T/restore.log")"
table_sums "$src_PORT" > "$T/a"; table_sums_db "$dst_PORT" rt > "$T/b"
check "every restored table equals the source" sh -c "diff '$T/a' '$T/b'"
G "$S" head logship.json >/dev/null; ok $? "the store's identity object is in GCS"
done_testing
