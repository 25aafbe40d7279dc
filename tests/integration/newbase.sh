#!/bin/sh
# New bases in the live chain and retention, on real PostgreSQL clusters:
#  - logship-agent --new-base twice under a live workload: no new
#    generation, the agent's slot untouched, a standby (--follow) keeps
#    following and ends equal to the source
#  - a fresh restore starts from the newest base and reads only the
#    segments after it; --until-lsn between two bases picks the earlier
#    and is exact
#  - logship-restore expire: --dry-run deletes nothing, --keep-bases keeps
#    exactly the newest bases and the segments they need, a --state-dir
#    holds back what it needs, kill -9 mid-expire leaves a store that
#    verifies and restores, a restore into the expired range says so;
#    verify still reports a real gap
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
BLOBCAT="$top_builddir/tests/tools/blobcat"
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
for db in follow fresh until_l until_t after_expire until_after killed final; do
	psql_at "$Q" -c "create database $db" >/dev/null
done
lsn_le() { [ "$(psql_at "$P" -c "select '$1'::pg_lsn <= '$2'::pg_lsn")" = t ]; }
load() { "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T "$1" -R 150 postgres >/dev/null 2>&1; }

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null

"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
GEN=0000000000000001
SLOT0=$(psql_at "$P" -c "select restart_lsn from pg_replication_slots where slot_name = 'logship'")

"$RESTORE" --store "$S" --target "$(dst follow)" --state-dir "$T/st-follow" --follow --batch-txns 50 > "$T/follow.log" 2>&1 &
RPID=$!; track_pid $RPID

# first new base while the workload runs
load 6 & LPID=$!
sleep 1
"$AGENT" --source "$SRC" --store "$S" --new-base > "$T/nb1.log" 2>&1
is "$?" 0 "--new-base exits 0 under load" || sed 's/^/# /' "$T/nb1.log"
wait $LPID
B1=$(ls -d "$S/$GEN"/base-* 2>/dev/null | head -n 1); B1=${B1##*/}
test -f "$S/$GEN/$B1/manifest"; ok $? "the new base $B1 has its manifest"
C1=$("$BLOBCAT" "$S/$GEN/$B1/manifest" | jq -r .consistent_lsn)
like "$(cat "$T/nb1.log")" "new base $B1 consistent at $C1" "it names its consistent point"
is "$(ls "$S" | grep -c '^[0-9a-f]\{16\}$')" 1 "still one generation"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" 1 "the temporary slot is gone; the agent's slot is left"

# a quiet point between the two bases: L and the source's data at L
sleep 1
L=$(psql_at "$P" -c "select pg_current_wal_lsn()")
TL=$(psql_at "$P" -c "select clock_timestamp()")
table_sums "$P" > "$T/at_l"

load 6 & LPID=$!
sleep 1
"$AGENT" --source "$SRC" --store "$S" --new-base > "$T/nb2.log" 2>&1
is "$?" 0 "a second --new-base exits 0 under load"
wait $LPID
B2=$(ls -d "$S/$GEN"/base-* | tail -n 1); B2=${B2##*/}
C2=$("$BLOBCAT" "$S/$GEN/$B2/manifest" | jq -r .consistent_lsn)
ok "$([ "$B1" != "$B2" ] && lsn_le "$C1" "$L" && ! lsn_le "$C2" "$L"; echo $?)" "two new bases: $C1 <= L=$L < $C2"
load 2

# everything up to END in the store; the standby follows to the end
kill -TERM $APID; wait $APID
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END"
last_end=$("$RESTORE" cat --store "$S" | jq -r 'select(.type=="commit") | .end_lsn' | tail -n 1)
i=0; while [ "$(psql_at_db "$Q" follow -c "select end_lsn from logship.applied" 2>/dev/null)" != "$last_end" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -0 $RPID 2>/dev/null; ok $? "the standby is still following after two new bases"
is "$(psql_at_db "$Q" follow -c "select end_lsn from logship.applied")" "$last_end" "and caught up with the store"
fingerprint "$P" postgres > "$T/fp_src"
fingerprint "$Q" follow > "$T/fp_follow"
check "the standby equals the source (fingerprint)" sh -c "diff '$T/fp_src' '$T/fp_follow'"
kill -TERM $RPID; wait $RPID
NSEG=$(ls "$S/$GEN/seg" | wc -l)

# a fresh restore starts from the newest base
"$RESTORE" --store "$S" --target "$(dst fresh)" --state-dir "$T/st-fresh" > "$T/fresh.log" 2>&1
is "$?" 0 "a fresh restore exits 0"
like "$(cat "$T/fresh.log")" "base $B2 of generation $GEN \\(consistent at $C2\\); transactions after it from segment [0-9a-f]{16}, [1-9][0-9]* earlier segment" \
    "it loads the newest base and skips the segments before it"
FROM=$(sed -n 's/.*transactions after it from segment \([0-9a-f]*\).*/\1/p' "$T/fresh.log")
nread=$(sed -n 's/.*summary: segments=\([0-9]*\).*/\1/p' "$T/fresh.log")
is "$nread" "$((NSEG - 0x${FROM:-0} + 1))" "it read only segments $FROM on ($nread of $NSEG)"
fingerprint "$Q" fresh > "$T/fp_fresh"
check "the fresh restore equals the source" sh -c "diff '$T/fp_src' '$T/fp_fresh'"

# --until-lsn between the two bases: the earlier one, exactly
"$RESTORE" --store "$S" --target "$(dst until_l)" --state-dir "$T/st-until" --until-lsn "$L" > "$T/until.log" 2>&1
is "$?" 0 "--until-lsn $L exits 0"
like "$(cat "$T/until.log")" "base $B1 of generation" "it picks the base before the point ($B1)"
table_sums_db "$Q" until_l > "$T/until_sums"
check "and equals the source at $L" sh -c "diff '$T/at_l' '$T/until_sums'"

"$RESTORE" --store "$S" --target "$(dst until_t)" --state-dir "$T/st-until-t" --until-time "$TL" > "$T/until_t.log" 2>&1
is "$?" 0 "--until-time $TL exits 0"
like "$(cat "$T/until_t.log")" "base $B1 of generation" "it picks the base consistent before that time ($B1)"
table_sums_db "$Q" until_t > "$T/until_t_sums"
check "and equals the source at that time" sh -c "diff '$T/at_l' '$T/until_t_sums'"

# ---- expire ----
find "$S" -type f | sort > "$T/objs0"
"$RESTORE" expire --store "$S" > "$T/x.log" 2>&1
is "$?" 2 "expire without --keep-bases or --keep-since is a usage error"
"$RESTORE" expire --store "$S" --keep-bases 0 > "$T/x.log" 2>&1
is "$?" 2 "--keep-bases 0 is refused (the newest base always stays)"
"$RESTORE" expire --store "$S" --keep-since "1 d" > "$T/x.log" 2>&1
is "$?" 2 "--keep-since with a space is refused"

"$RESTORE" expire --store "$S" --keep-bases 2 --dry-run > "$T/dry.log" 2>&1
is "$?" 0 "expire --dry-run exits 0"
like "$(cat "$T/dry.log")" "^expire $GEN/base consistent" "it would expire the first base"
find "$S" -type f | sort > "$T/objs1"
check "--dry-run deletes nothing" cmp -s "$T/objs0" "$T/objs1"
"$RESTORE" expire --store "$S" --keep-since 1h --dry-run > "$T/dry2.log" 2>&1
like "$(cat "$T/dry2.log")" "nothing to delete" "--keep-since 1h keeps every base made within the hour"
"$RESTORE" expire --store "$S" --keep-since 1s --dry-run > "$T/dry4.log" 2>&1
like "$(cat "$T/dry4.log")" "^expire $GEN/$B1 consistent at $C1" "--keep-since 1s would expire the bases made before that"
like "$(cat "$T/dry4.log")" "^keep   $GEN/$B2 consistent at $C2" "but always keeps the newest"

# the until restore's state dir sits between the bases: it holds back
USEG=$(psql_at_db "$Q" until_l -c "select segno from logship.applied")
"$RESTORE" expire --store "$S" --keep-bases 1 --state-dir "$T/st-until" --dry-run > "$T/dry3.log" 2>&1
like "$(cat "$T/dry3.log")" "keep   segments from $(printf %016x "$USEG")" "a --state-dir holds back the segments it still needs"

"$RESTORE" expire --store "$S" --keep-bases 2 > "$T/x2.log" 2>&1
is "$?" 0 "expire --keep-bases 2 exits 0" || sed 's/^/# /' "$T/x2.log"
find "$S" -type f | sort > "$T/objs2"
LOW=$(ls "$S/$GEN/seg" | head -n 1)
comm -23 "$T/objs0" "$T/objs2" > "$T/gone"
awk -v s="$S/$GEN/" -v low="$LOW" '{ k = substr($0, length(s) + 1) }
	k ~ /^base\// { next } k ~ /^seg\// && substr(k, 5) < low { next } { print "unexpected: " $0 }' "$T/gone" > "$T/unexpected"
is "$(cat "$T/unexpected")" "" "expire deleted only the first base and segments below $LOW"
is "$(grep -c "^$S/$GEN/base/" "$T/objs2")" 0 "the first base is gone"
is "$(grep -c "^$S/$GEN/seg/" "$T/gone")" "$((0x$LOW - 1))" "segments 1..$LOW-1 are gone"
ok "$(grep -q "^$S/$GEN/$B1/manifest" "$T/objs2" && grep -q "^$S/$GEN/$B2/manifest" "$T/objs2"; echo $?)" "both newer bases are kept"
prev=$(printf %016x $((0x$LOW - 1)))
"$RESTORE" ls --store "$T/store" > "$T/ls0.log" 2>&1
"$RESTORE" verify --store "$S" > "$T/v.log" 2>&1
is "$?" 0 "verify passes on the expired store" || sed 's/^/# /' "$T/v.log"
like "$(cat "$T/v.log")" "segments below $LOW were expired" "and says what was expired"
like "$(cat "$T/ls0.log")" "expired: segments below $LOW" "ls shows the expired prefix"
like "$(cat "$T/ls0.log")" "  $B1: consistent at $C1" "ls lists every base"

"$RESTORE" --store "$S" --target "$(dst after_expire)" --state-dir "$T/st-ae" > "$T/ae.log" 2>&1
is "$?" 0 "a fresh restore after expire exits 0"
fingerprint "$Q" after_expire > "$T/fp_ae"
check "and equals the source" sh -c "diff '$T/fp_src' '$T/fp_ae'"
"$RESTORE" --store "$S" --target "$(dst until_after)" --state-dir "$T/st-ua" --until-lsn "$L" > "$T/ua.log" 2>&1
is "$?" 0 "--until-lsn $L still works after expire (its base was kept)"
table_sums_db "$Q" until_after > "$T/ua_sums"
check "exactly" sh -c "diff '$T/at_l' '$T/ua_sums'"
"$RESTORE" --store "$S" --target "$(dst killed)" --state-dir "$T/st-old" --until-lsn "$SLOT0" > "$T/old.log" 2>&1
is "$?" 2 "a restore to a point before the oldest kept base fails as bad input"
like "$(cat "$T/old.log")" "expire removed the bases before $B1" "naming what expire removed"

# kill -9 in the middle of an expire: the store still verifies and restores
LOGSHIP_CRASHPOINT=expire-after-delete:3 "$RESTORE" expire --store "$S" --keep-bases 1 > "$T/x3.log" 2>&1
is "$?" 137 "expire killed (-9) after 3 deletions"
ok "$([ ! -f "$S/$GEN/$B1/manifest" ] && [ -n "$(ls "$S/$GEN/$B1")" ]; echo $?)" "it died half way through: $B1 has lost its manifest, not all its objects"
"$RESTORE" verify --store "$S" > "$T/v2.log" 2>&1
is "$?" 0 "verify passes after the kill" || sed 's/^/# /' "$T/v2.log"
psql_at "$Q" -c "drop database killed" >/dev/null; psql_at "$Q" -c "create database killed" >/dev/null
"$RESTORE" --store "$S" --target "$(dst killed)" --state-dir "$T/st-killed" > "$T/k.log" 2>&1
is "$?" 0 "a restore after the kill exits 0"
fingerprint "$Q" killed > "$T/fp_k"
check "and equals the source" sh -c "diff '$T/fp_src' '$T/fp_k'"
"$RESTORE" expire --store "$S" --keep-bases 1 > "$T/x4.log" 2>&1
is "$?" 0 "expire run again finishes the work"
is "$(cd "$S/$GEN" && find base* -type f | sed 's,/.*,,' | sort -u)" "$B2" "only the newest base is left"
"$RESTORE" verify --store "$S" > "$T/v3.log" 2>&1
is "$?" 0 "verify passes"
"$RESTORE" --store "$S" --target "$(dst final)" --state-dir "$T/st-final" > "$T/f.log" 2>&1
fingerprint "$Q" final > "$T/fp_f"
check "a restore from what is left equals the source" sh -c "diff '$T/fp_src' '$T/fp_f'"

"$RESTORE" --store "$S" --target "$(dst until_l)" --state-dir "$T/st-until" > "$T/behind.log" 2>&1
is "$?" 2 "a target whose next segments were expired cannot continue: exit 2"
like "$(cat "$T/behind.log")" "this target is at segment $(printf %016x "$USEG") of generation $GEN, but logship-restore expire removed the segments below" \
    "saying that expire removed what it needs"

# --base-interval: the streaming agent takes one itself when the newest is old
sleep 2
"$AGENT" --source "$SRC" --store "$S" --flush-interval 0.2 --base-interval 2s > "$T/agent2.log" 2>&1 &
APID=$!; track_pid $APID
load 2
i=0; until [ "$(ls "$S/$GEN"/base-*/manifest 2>/dev/null | wc -l)" -ge 2 ] || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -TERM $APID; wait $APID
is "$?" 0 "the agent with --base-interval exits 0 on SIGTERM"
is "$(ls "$S/$GEN"/base-*/manifest | wc -l)" 2 "it took a new base while streaming"
like "$(cat "$T/agent2.log")" "new base base-[0-9a-f]{16} complete" "and logged it"
is "$(ls "$S" | grep -c '^[0-9a-f]\{16\}$')" 1 "still one generation"
"$RESTORE" verify --store "$S" > "$T/v5.log" 2>&1
is "$?" 0 "verify passes"
"$AGENT" --source "$SRC" --store "$S" --base-interval "2 s" > "$T/bad.log" 2>&1
is "$?" 2 "--base-interval with a space is a usage error"
like "$(cat "$T/bad.log")" "--base-interval 2 s: expected a duration" "naming the value"

# a restore killed while it loads a later base resumes with that base, even
# after a newer one appeared
psql_at "$P" -c "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 1500000) g" >/dev/null
psql_at "$P" -c "ALTER TABLE big ADD PRIMARY KEY (id)" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --new-base > "$T/nb4.log" 2>&1
ok $? "a third new base, with a big table"
B4=$(sed -n 's/.*new base \(base-[0-9a-f]*\) complete.*/\1/p' "$T/nb4.log")
psql_at "$Q" -c "create database resume" >/dev/null
"$RESTORE" --store "$S" --target "$(dst resume)" --state-dir "$T/st-resume" --jobs 1 > "$T/res1.log" 2>&1 &
RP=$!; track_pid $RP
i=0; until [ "$(psql_at_db "$Q" resume -c "select phase & 15 from logship.applied" 2>/dev/null)" = 1 ] || ! kill -0 $RP 2>/dev/null || [ $i -gt 600 ]; do sleep 0.05; i=$((i+1)); done
kill -9 $RP 2>/dev/null; ok $? "the restore was killed (-9) while loading $B4's data"
wait $RP 2>/dev/null
is "$(psql_at_db "$Q" resume -c "select phase & 15 from logship.applied")" 1 "its marker is in the base load"
"$AGENT" --source "$SRC" --store "$S" --new-base > "$T/nb5.log" 2>&1
ok $? "a fourth new base appears meanwhile"
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
"$RESTORE" --store "$S" --target "$(dst resume)" --state-dir "$T/st-resume" > "$T/res2.log" 2>&1
is "$?" 0 "the resumed restore exits 0"
like "$(cat "$T/res2.log")" "resuming the load of base $B4 of generation" "it kept the base it was loading"
fingerprint "$P" postgres > "$T/fp_src2"
fingerprint "$Q" resume > "$T/fp_res"
check "and equals the source" sh -c "diff '$T/fp_src2' '$T/fp_res'"

# mirror copies several bases and an expired prefix
"$RESTORE" mirror --from "$S" --to "$T/mirror" > "$T/m.log" 2>&1
is "$?" 0 "mirror copies the store with several bases and an expired prefix" || sed 's/^/# /' "$T/m.log"
(cd "$S" && find . -type f ! -name '*.confirmed' | sort) > "$T/m_src"
(cd "$T/mirror" && find . -type f ! -name '*.confirmed' | sort) > "$T/m_dst"
check "every object of it" cmp -s "$T/m_src" "$T/m_dst"
"$RESTORE" verify --store "$T/mirror" > "$T/v6.log" 2>&1
is "$?" 0 "and the copy verifies"

# a real gap is still a gap
cp -a "$S" "$T/gap"
G1=$(ls "$T/gap/$GEN/seg" | sed -n 3p)
rm "$T/gap/$GEN/seg/$G1"
"$RESTORE" verify --store "$T/gap" > "$T/v4.log" 2>&1
is "$?" 1 "verify fails on a store with a segment missing above the expired prefix"
like "$(cat "$T/v4.log")" "segment $G1 is missing.*gap in the numbering" "naming the gap"
cp -a "$S" "$T/gap2"
C=$(ls "$T/gap2/$GEN/$B2" | grep '^t-' | head -n 1)
rm "$T/gap2/$GEN/$B2/$C"
"$RESTORE" verify --store "$T/gap2" > "$T/v7.log" 2>&1
is "$?" 1 "verify fails on a base whose manifest lists an object that is gone"
like "$(cat "$T/v7.log")" "^BAD .*$B2/$C" "naming the object"

done_testing
