#!/bin/sh
# logship-restore mirror on a store the agent wrote from a pgbench workload:
#  - file -> file: the copy is byte-identical, verify passes on it, a
#    second run copies nothing, a restore from it equals the source
#  - a corrupt segment: mirror fails naming it, copies nothing under its
#    name nor after it, leaves logship.json out; once repaired, a rerun
#    completes
#  - a worker that cannot start: mirror fails saying so, leaves
#    logship.json out; a rerun completes
#  - an encrypted store: refused without the key, copied with it
#  - an object the destination holds with another size, and an unknown
#    object inside a generation, are refused by name; an object outside
#    the generations is copied as it is
#  - with lib-swift.sh and lib-azurite.sh, Swift, Azurite and the s3 and
#    azure backends: file -> Swift (s3) -> Azurite (azure) -> file, verify
#    at every hop, a second run of each hop copies nothing, a restore from
#    the last copy equals the source
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
GEN=0000000000000001
for db in frommirror fromcloud; do psql_at "$Q" -c "create database $db" >/dev/null; done
same_objects() {	# same_objects DIR1 DIR2: the same files with the same bytes
	(cd "$1" && find . -type f -exec md5sum {} + | sort -k 2) > "$T/objs.1" &&
	(cd "$2" && find . -type f -exec md5sum {} + | sort -k 2) > "$T/objs.2" &&
	diff "$T/objs.1" "$T/objs.2"
}

# a real store: base snapshot + segments of a pgbench workload
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 3 postgres >/dev/null 2>&1
ok $? "pgbench workload ran"
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END" || tail -n 20 "$T/agent.log" | sed 's/^/# /'
nseg=$(ls "$S/$GEN/seg" | wc -l)
[ "$nseg" -ge 5 ]; ok $? "the store holds a base and $nseg segments"
nobj=$(cd "$S" && find . -type f | wc -l)

# 1. file -> file
out=$("$RESTORE" mirror --from "$S" --to "file://$T/m1" --jobs 8 2>"$T/m1.err"); rc=$?
is "$rc" 0 "mirror file -> file exits 0"
like "$out" "^mirror: $nobj objects copied, 0 already present; [0-9]+ bytes in [0-9.]+ s" \
	"the summary counts every object, bytes and seconds"
[ -s "$T/m1.err" ] && sed 's/^/# /' "$T/m1.err"
check "the copy is byte-identical to the source" same_objects "$S" "$T/m1"
check "verify passes on the copy" "$RESTORE" verify --store "$T/m1"
out=$("$RESTORE" mirror --from "$S" --to "$T/m1" 2>&1); rc=$?
is "$rc" 0 "a second mirror exits 0"
like "$out" "^mirror: 0 objects copied, $nobj already present" "and copies nothing"

"$RESTORE" --store "$T/m1" --target "$(dst frommirror)" --state-dir "$T/st-m1" > "$T/restore.log" 2>&1
is "$?" 0 "restore from the mirrored copy exits 0"
table_sums "$P" > "$T/sums.src"; table_sums_db "$Q" frommirror > "$T/sums.m1"
check "the restore from the copy equals the source" diff "$T/sums.src" "$T/sums.m1"

# 2. a corrupt segment in the source
cp -r "$S" "$T/bad"
k=$((nseg / 2))
kseg=$(printf '%016x' "$k")
printf '\377' | dd of="$T/bad/$GEN/seg/$kseg" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$("$RESTORE" mirror --from "$T/bad" --to "$T/m2" 2>&1); rc=$?
is "$rc" 1 "mirror exits 1 on a corrupt segment"
like "$out" "$GEN/seg/$kseg: " "and names it"
test ! -e "$T/m2/$GEN/seg/$kseg"; ok $? "nothing is stored under its name"
test -z "$(ls "$T/m2/$GEN/seg" | awk -v k="$kseg" '$1 > k')"; ok $? "nor any segment after it"
is "$(ls "$T/m2/$GEN/seg" | wc -l | tr -d ' ')" "$((k - 1))" "the segments before it are copied"
test ! -e "$T/m2/logship.json"; ok $? "logship.json is not written"
check "the partial copy verifies" "$RESTORE" verify --store "$T/m2"
cp "$S/$GEN/seg/$kseg" "$T/bad/$GEN/seg/$kseg"
out=$("$RESTORE" mirror --from "$T/bad" --to "$T/m2" 2>&1); rc=$?
is "$rc" 0 "after the repair, mirror completes"
like "$out" "^mirror: $((nseg - k + 2)) objects copied" "copying the rest and logship.json"
check "the repaired copy equals the source" same_objects "$S" "$T/m2"

# 2b. a worker that cannot start stops the mirror, logship.json unwritten
out=$(LOGSHIP_TEST_FAIL_WORKER_START=2 "$RESTORE" mirror --from "$S" --to "$T/mstop" --jobs 4 2>&1); rc=$?
is "$rc" 1 "mirror exits 1 when a worker cannot start"
like "$out" "mirror: cannot start worker 2 of 4: " "naming the worker and the cause"
test ! -e "$T/mstop/logship.json"; ok $? "logship.json is not written"
out=$("$RESTORE" mirror --from "$S" --to "$T/mstop" 2>&1); rc=$?
is "$rc" 0 "the next run completes"
check "and the copy equals the source" same_objects "$S" "$T/mstop"

# 3. an encrypted store (a second agent, its own slot and store)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/key"; chmod 600 "$T/key"
"$AGENT" --source "$SRC" --store "$T/enc" --init --slot enc --key-file "$T/key" \
	--endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
ok $? "an agent wrote an encrypted store"
out=$("$RESTORE" mirror --from "$T/enc" --to "$T/menc" 2>&1); rc=$?
is "$rc" 1 "mirror of an encrypted store without --key-file fails"
like "$out" "$GEN/base/.*encrypted; pass" "naming an object and the fix"
out=$("$RESTORE" mirror --from "$T/enc" --to "$T/menc" --key-file "$T/key" --jobs 1 2>&1); rc=$?
is "$rc" 0 "with --key-file it completes"
check "verify --key-file passes on the encrypted copy" "$RESTORE" verify --store "$T/menc" --key-file "$T/key"

# 4. refusals and foreign objects
cp -r "$S" "$T/m3"
echo "extra" >> "$T/m3/$GEN/seg/0000000000000001"
out=$("$RESTORE" mirror --from "$S" --to "$T/m3" 2>&1); rc=$?
is "$rc" 1 "an object present with another size fails the mirror"
like "$out" "$GEN/seg/0000000000000001: store .* holds [0-9]+ bytes of it" "naming it"
cp -r "$S" "$T/odd"
echo "hello" > "$T/odd/$GEN/stray"
mkdir -p "$T/odd/notes" && echo "kept as is" > "$T/odd/notes/readme"
out=$("$RESTORE" mirror --from "$T/odd" --to "$T/m4" 2>&1); rc=$?
is "$rc" 1 "an unknown object inside a generation fails the mirror"
like "$out" "$GEN/stray: unexpected object" "naming it"
test ! -e "$T/m4/$GEN/stray"; ok $? "and it is not copied"
is "$(cat "$T/m4/notes/readme" 2>&1)" "kept as is" "an object outside the generations is copied as it is"

# 5. file -> Swift (s3) -> Azurite (azure) -> file
D=$(dirname "$0")
cloud_skip=""
if [ ! -f "$D/lib-swift.sh" ] || [ ! -f "$D/lib-azurite.sh" ]; then
	cloud_skip="tests/integration/lib-swift.sh or lib-azurite.sh is missing"
else
	. "$D/lib-swift.sh"
	. "$D/lib-azurite.sh"
	for f in swift_start swift_mb az_start az_mkcontainer; do
		command -v "$f" >/dev/null 2>&1 || cloud_skip="$cloud_skip $f"
	done
	[ -n "$cloud_skip" ] && cloud_skip="lib-swift.sh/lib-azurite.sh do not define:$cloud_skip"
fi
for scheme in s3 azure; do
	[ -z "$cloud_skip" ] || break
	"$RESTORE" ls --store "$scheme://x/y" 2>&1 | grep -q "unknown URL scheme" &&
		cloud_skip="this logship-restore has no $scheme backend"
done
if [ -z "$cloud_skip" ] && { [ ! -x /usr/bin/swift-proxy-server ] || [ ! -r /etc/swift/swift.conf ]; }; then
	cloud_skip="OpenStack Swift is not installed (tools/bootstrap)"
fi
if [ -z "$cloud_skip" ]; then
	az_main >/dev/null && command -v node >/dev/null 2>&1 ||
		cloud_skip="Azurite (npm) or node is not installed (tools/bootstrap)"
fi
[ -z "$cloud_skip" ] && { swift_start || cloud_skip="Swift did not start"; }
[ -z "$cloud_skip" ] && { az_start || cloud_skip="Azurite did not start"; }
if [ -n "$cloud_skip" ]; then
	for what in "bucket and container" "file -> s3, verify" "s3 -> azure, verify" \
	    "azure -> file, verify" "the last copy is byte-identical" \
	    "second run file -> s3" "second run s3 -> azure" "second run azure -> file" \
	    "restore from the last copy"; do
		_n=$((_n + 1)); echo "ok $_n # SKIP $what: $cloud_skip"
	done
	done_testing
fi

swift_mb hop1 >/dev/null && az_mkcontainer hop2 >/dev/null
ok $? "Swift bucket and Azurite container created"
CLOUD="--s3-endpoint $S3_ENDPOINT --s3-region us-east-1 --s3-uri-style path --azure-endpoint $AZ_ENDPOINT"
# shellcheck disable=SC2086
hop() {	# hop FROM TO: mirror, then verify TO
	"$RESTORE" mirror --from "$1" --to "$2" $CLOUD && "$RESTORE" verify --store "$2" $CLOUD
}
check "file -> s3 (Swift), then verify" hop "$S" s3://hop1/copy
check "s3 -> azure (Azurite), then verify" hop s3://hop1/copy azure://hop2/copy
check "azure -> file, then verify" hop azure://hop2/copy "$T/m5"
check "the last copy is byte-identical to the source" same_objects "$S" "$T/m5"
for pair in "$S s3://hop1/copy" "s3://hop1/copy azure://hop2/copy" "azure://hop2/copy $T/m5"; do
	# shellcheck disable=SC2086
	set -- $pair
	# shellcheck disable=SC2086
	out=$("$RESTORE" mirror --from "$1" --to "$2" $CLOUD 2>&1)
	like "$out" "^mirror: 0 objects copied, $nobj already present" "second run $1 -> $2 copies nothing"
done
"$RESTORE" --store "$T/m5" --target "$(dst fromcloud)" --state-dir "$T/st-m5" > "$T/restore5.log" 2>&1
table_sums_db "$Q" fromcloud > "$T/sums.m5"
check "the restore from the last copy equals the source" diff "$T/sums.src" "$T/sums.m5"

done_testing
