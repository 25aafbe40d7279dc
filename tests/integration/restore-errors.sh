#!/bin/sh
# logship-restore's bad input: a corrupt or tampered segment, a gap, a
# broken chain, a wrong or missing key, an unusable state dir, a state dir
# of another store or target, a non-empty target, a second restore at once.
# Each stops with a message naming the cause, and applies nothing from the
# bad object (or nothing at all, where the input is wrong from the start).
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
for db in corrupt gap chain enc1 enc2 enc3 busy other; do psql_at "$Q" -c "create database $db" >/dev/null; done
psql_at "$P" -c "CREATE TABLE t (id int PRIMARY KEY, v text)" >/dev/null
head -c 32 /dev/urandom > "$T/key"; head -c 32 /dev/urandom > "$T/key2"
chmod 600 "$T/key" "$T/key2"	# key files others may read are refused

# make_store DIR [agent args]: 6 transactions a segment apart, then --endpos
make_store() {
	d=$1; shift
	"$AGENT" --source "$SRC" --store "$d" --init --flush-interval 0.1 "$@" > "$T/agent.log" 2>&1 &
	a=$!; track_pid $a
	i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
	for n in 1 2 3 4 5 6; do
		K=$((K + 1))
		psql_at "$P" -c "INSERT INTO t VALUES ($K, 'row $n')" >/dev/null
		sleep 0.4
	done
	kill -TERM $a; wait $a
	"$AGENT" --source "$SRC" --store "$d" --init --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" "$@" >> "$T/agent.log" 2>&1
}
S="$T/store"
K=0
make_store "$S"
nseg=$(ls "$S/0000000000000001/seg" | wc -l | tr -d ' ')
[ "$nseg" -ge 5 ]; ok $? "the store has several segments ($nseg)"
seg() { printf '%s/0000000000000001/seg/%016x' "$1" "$2"; }
applied() { psql_at_db "$Q" "$1" -c "select segno from logship.applied" 2>/dev/null; }

# a corrupt segment 3: everything before it applied, nothing from it
cp -r "$S" "$T/s-corrupt"
printf '\377' | dd of="$(seg "$T/s-corrupt" 3)" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$("$RESTORE" --store "$T/s-corrupt" --target "$(dst corrupt)" --state-dir "$T/st1" 2>&1); rc=$?
is "$rc" 1 "a corrupt segment stops the restore (exit 1)"
like "$out" "segment 0000000000000003: " "naming the segment"
is "$(applied corrupt)" "2" "the target holds everything before it and nothing from it"
# the state follows the target: rerun after repair completes
cp "$(seg "$S" 3)" "$(seg "$T/s-corrupt" 3)"
"$RESTORE" --store "$T/s-corrupt" --target "$(dst corrupt)" --state-dir "$T/st1" >/dev/null 2>&1
ok $? "after the segment is repaired the restore resumes and completes"
table_sums "$P" > "$T/a"; table_sums_db "$Q" corrupt > "$T/b"
check "and the target equals the source" diff "$T/a" "$T/b"

# a gap: segment 3 missing
cp -r "$S" "$T/s-gap"; rm "$(seg "$T/s-gap" 3)"
out=$("$RESTORE" --store "$T/s-gap" --target "$(dst gap)" --state-dir "$T/st2" 2>&1); rc=$?
is "$rc" 1 "a gap stops the restore"
like "$out" "segment 0000000000000003 is missing" "naming the missing segment"
is "$(applied gap)" "2" "nothing after the gap is applied"

# a broken chain: segment 3 from another store of the same source
psql_at "$P" -c "select pg_drop_replication_slot('logship')" >/dev/null
make_store "$T/s-other" --slot other
psql_at "$P" -c "select pg_drop_replication_slot('other')" >/dev/null
cp -r "$S" "$T/s-chain"; cp "$(seg "$T/s-other" 3)" "$(seg "$T/s-chain" 3)"
out=$("$RESTORE" --store "$T/s-chain" --target "$(dst chain)" --state-dir "$T/st3" 2>&1); rc=$?
is "$rc" 1 "a broken hash chain stops the restore"
like "$out" "segment 0000000000000003: hash chain broken.*segment 0000000000000002" "naming both segments"
is "$(applied chain)" "2" "nothing from the foreign segment is applied"

# encrypted store: wrong key, missing key
make_store "$T/s-enc" --key-file "$T/key" --slot enc
out=$("$RESTORE" --store "$T/s-enc" --target "$(dst enc1)" --state-dir "$T/st4" --key-file "$T/key2" 2>&1); rc=$?
is "$rc" 2 "a wrong key exits 2"
like "$out" "wrong --key-file" "saying so"
is "$(psql_at_db "$Q" enc1 -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")" "0" "and applies nothing"
out=$("$RESTORE" --store "$T/s-enc" --target "$(dst enc2)" --state-dir "$T/st5" 2>&1); rc=$?
is "$rc" 2 "a missing key exits 2"
like "$out" "pass its key with --key-file" "saying so"
"$RESTORE" --store "$T/s-enc" --target "$(dst enc3)" --state-dir "$T/st6" --key-file "$T/key" >/dev/null 2>&1
ok $? "the right key restores"
# a segment re-sealed after tampering: the checksum is right, the tag is not
cp -r "$T/s-enc" "$T/s-tamper"
f=$(seg "$T/s-tamper" 2); sz=$(stat -c %s "$f")
printf '\001' | dd of="$f" bs=1 seek=$((sz - 60)) conv=notrunc 2>/dev/null
head -c $((sz - 32)) "$f" > "$T/body"; { cat "$T/body"; openssl dgst -sha256 -binary "$T/body"; } > "$f"
"$RESTORE" verify --store "$T/s-tamper" --key-file "$T/key" > "$T/v.out" 2>&1
like "$(cat "$T/v.out")" "BAD segment 0000000000000002: " "a tampered, re-checksummed segment is caught (by its tag, or earlier by decoding)"

# unusable state dirs
out=$("$RESTORE" --store "$S" --target "$(dst other)" --state-dir /proc/logship-state 2>&1); rc=$?
is "$rc" 2 "an unusable state dir exits 2"
like "$out" "state dir /proc/logship-state" "naming it"
out=$("$RESTORE" --store "$S" --target "$(dst other)" --state-dir "$T/st1" 2>&1); rc=$?
is "$rc" 2 "a state dir of another target exits 2"
like "$out" "belongs to .*database corrupt" "naming what it belongs to"
out=$("$RESTORE" --store "$T/s-enc" --target "$(dst corrupt)" --state-dir "$T/st1" --key-file "$T/key" 2>&1); rc=$?
is "$rc" 2 "a target restored from another store exits 2"
is "$(psql_at_db "$Q" other -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")" "0" "none of these applied anything"

# a non-empty target; --truncate
psql_at_db "$Q" busy -c "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (-1, 'mine')" >/dev/null
out=$("$RESTORE" --store "$S" --target "$(dst busy)" --state-dir "$T/st7" 2>&1); rc=$?
is "$rc" 2 "a target whose tables hold rows is refused"
like "$out" "public.t already hold rows.*--truncate" "naming the table and the way out"
is "$(psql_at_db "$Q" busy -c "select v from t")" "mine" "its rows are untouched"
"$RESTORE" --store "$S" --target "$(dst busy)" --state-dir "$T/st8" --truncate >/dev/null 2>&1
ok $? "--truncate restores into it"
table_sums_db "$Q" corrupt > "$T/a"; table_sums_db "$Q" busy > "$T/b"
check "emptying exactly the restored tables first (same rows as a clean restore)" diff "$T/a" "$T/b"

# two restores at once
"$RESTORE" --store "$S" --target "$(dst corrupt)" --state-dir "$T/st1" --follow > "$T/f.log" 2>&1 &
F=$!; track_pid $F
sleep 1
out=$("$RESTORE" --store "$S" --target "$(dst corrupt)" --state-dir "$T/st1" 2>&1); rc=$?
like "$out" "state dir .* is in use by another logship-restore" "a second restore on the same state dir is refused"
out=$("$RESTORE" --store "$S" --target "$(dst corrupt)" --state-dir "$T/st9" 2>&1); rc=$?
like "$out" "another logship-restore is restoring into this target" "a second restore into the same target is refused"
kill -TERM $F; wait $F; ok $? "the --follow restore stops cleanly"


# a base chunk replaced by another valid one, or damaged: loaded in one pass
# (checked against the manifest's sha256 as it streams), the COPY is aborted
# and none of the chunk's rows are committed; the rerun after the repair
# loads it whole
BLOBCAT="$top_builddir/tests/tools/blobcat"
for db in repl dmg; do psql_at "$Q" -c "create database $db" >/dev/null; done
psql_at "$P" -c "CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b SELECT g, md5(g::text) FROM generate_series(1, 20000) g" >/dev/null
SB1="$T/storeb1"; SB2="$T/storeb2"
"$AGENT" --source "$SRC" --store "$SB1" --slot sb1 --init --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" > "$T/agentb.log" 2>&1
ok $? "a store with table b in its base"
psql_at "$P" -c "INSERT INTO b SELECT g, 'later' FROM generate_series(20001, 20100) g" >/dev/null
"$AGENT" --source "$SRC" --store "$SB2" --slot sb2 --init --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agentb.log" 2>&1
ok $? "and a second store, whose chunk of b holds 100 more rows"
kb=$("$BLOBCAT" "$SB1/0000000000000001/base/manifest" | jq -r '.tables[] | select(.name == "b") | .chunks[0].key')
cp "$SB1/$kb" "$T/chunk.orig"
cp "$SB2/$kb" "$SB1/$kb"
out=$("$RESTORE" --store "$SB1" --target "$(dst repl)" --state-dir "$T/stb1" 2>&1); rc=$?
is "$rc" 1 "a replaced base chunk stops the restore"
like "$out" "$kb: sha256 differs from the base manifest \(replaced object\)" "naming the chunk"
like "$(cat "$dst_DIR/log")" "COPY from stdin failed: logship: $kb: sha256 differs from the base manifest" \
	"the target's log says why the COPY was aborted"
is "$(psql_at_db "$Q" repl -c "select count(*) from b")" 0 "none of its rows are committed"
cp "$T/chunk.orig" "$SB1/$kb"
"$RESTORE" --store "$SB1" --target "$(dst repl)" --state-dir "$T/stb1" > "$T/rb.log" 2>&1
ok $? "the rerun after the repair finishes"
is "$(psql_at_db "$Q" repl -c "select count(*), sum(length(v)) from b")" "20000|640000" "with the chunk's rows, once"
size=$(wc -c < "$SB1/$kb")
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$SB1/$kb" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 255)))" | dd of="$SB1/$kb" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
ok "$(cmp -s "$SB1/$kb" "$T/chunk.orig"; [ $? -eq 1 ]; echo $?)" "the chunk is damaged (one byte flipped)"
out=$("$RESTORE" --store "$SB1" --target "$(dst dmg)" --state-dir "$T/stb2" 2>&1); rc=$?
is "$rc" 1 "a damaged base chunk stops the restore"
like "$out" "$kb" "naming the chunk"
is "$(psql_at_db "$Q" dmg -c "select count(*) from b")" 0 "none of its rows are committed"
psql_at "$P" -c "select pg_drop_replication_slot('sb1'), pg_drop_replication_slot('sb2')" >/dev/null

done_testing
