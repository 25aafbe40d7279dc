#!/bin/sh
# A store crafted to attack the restore (issue 14, "Hostile input").
# A real store is made by the agent from a source whose tables have names
# with quotes, semicolons and unicode; it must restore exactly.  Then
# copies of it are broken, one way each: segment 3 has a flipped byte, is
# swapped with 4, deleted, truncated; it is forged and re-sealed with a
# valid checksum (tests/tools/forgeseg.py) to carry an absurd body length,
# frame length, string length or column count, a relation whose column
# count disagrees with its tuples, or a relation named to inject SQL or to
# forge a log line; the base manifest names a table to inject SQL, or it
# or the identity file is garbage.  Each restore must exit non-zero with a
# message naming the object, apply nothing from it (the target's marker
# stays at segment 2, the rows are those of segments 1 and 2), and leave
# the table "victim" intact.
. "$(dirname "$0")/lib.sh"

FORGE="$top_srcdir/tests/tools/forgeseg.py"
command -v python3 >/dev/null || skip_all "python3 is needed to forge segments"
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }

# Tables whose names need quoting, and a victim to protect.
psql_at "$P" >/dev/null <<'EOF'
CREATE TABLE victim (id int PRIMARY KEY, v text);
INSERT INTO victim VALUES (1, 'a'), (2, 'b'), (3, 'c');
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t VALUES (0, 'in the base');
CREATE SCHEMA "s'ch;ema";
CREATE TABLE "s'ch;ema"."q""uo'te; DROP TABLE victim; --" (id int PRIMARY KEY, "c""ol;" text);
CREATE TABLE "ünï ☃ 表" ("ключ" int PRIMARY KEY, "värde" text);
EOF

# Six transactions a segment apart, each touching every table.
# zlib: tests/tools/forgeseg.py re-seals what it forges with zlib
"$AGENT" --source "$SRC" --store "$T/store" --init --flush-interval 0.1 --compression zlib > "$T/agent.log" 2>&1 &
a=$!; track_pid $a
i=0; until grep -q "streaming generation" "$T/agent.log" 2>/dev/null || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
for n in 1 2 3 4 5 6; do
	psql_at "$P" >/dev/null <<EOF
BEGIN;
INSERT INTO t VALUES ($n, 'row $n');
INSERT INTO "s'ch;ema"."q""uo'te; DROP TABLE victim; --" VALUES ($n, 'it''s; "$n"');
INSERT INTO "ünï ☃ 表" VALUES ($n, 'значение $n ☃');
UPDATE t SET v = v || ';' WHERE id = $n - 1;
COMMIT;
EOF
	sleep 0.4
done
kill -TERM $a; wait $a
"$AGENT" --source "$SRC" --store "$T/store" --init --compression zlib --endpos "$(psql_at "$P" -c "select pg_current_wal_lsn()")" >> "$T/agent.log" 2>&1
S="$T/store"
nseg=$(ls "$S/0000000000000001/seg" | wc -l | tr -d ' ')
[ "$nseg" -ge 5 ]; ok $? "the store has several segments ($nseg)"
seg() { printf '%s/0000000000000001/seg/%016x' "$1" "$2"; }

# The names restore exactly (quoting everywhere, base and stream).
psql_at "$Q" -c "create database good" >/dev/null
"$RESTORE" --store "$S" --target "$(dst good)" --state-dir "$T/st-good" > "$T/good.log" 2>&1
ok $? "the store restores (tables named with quotes, semicolons, unicode)"
table_sums "$P" > "$T/a"; table_sums_db "$Q" good > "$T/b"
check "every table equals the source" diff "$T/a" "$T/b"
is "$(wc -l < "$T/b" | tr -d ' ')" "4" "all four tables are there"
# errors FILE: the error lines of a restore's output (log or last word)
errors() { grep -E '^[^ ]+ (error|fatal) |^logship-restore: ' "$1"; }

# attack NAME ERE: restore the store $T/s-NAME into a new
# database; it must fail naming the object (ERE), apply nothing from
# segment 3 and leave victim intact.
attack() {
	name=$1; want=$2
	psql_at "$Q" -c "create database \"h_$name\"" >/dev/null
	"$RESTORE" --store "$T/s-$name" --target "$(dst "h_$name")" \
	    --state-dir "$T/st-$name" > "$T/$name.out" 2>&1; rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && ! grep -q "Sanitizer" "$T/$name.out"
	ok $? "$name: the restore is refused (exit $rc), no sanitizer report"
	sed "s/^/# $name: /" "$T/$name.out" | tail -n 3
	like "$(errors "$T/$name.out" | tail -n 1)" "$want" \
	    "$name: its error line names the object"
	is "$(errors "$T/$name.out" | wc -l | tr -d ' ')" "1" "$name: one error line"
}
# applied_upto NAME N: the marker is at segment N, t holds the rows of
# the transactions before it, victim is intact.
applied_upto() {
	is "$(psql_at_db "$Q" "h_$1" -c "select segno from logship.applied" 2>&1)" "$2" \
	    "$1: the target's marker stays at segment $2"
	is "$(psql_at_db "$Q" "h_$1" -c "select count(*) from t" 2>&1)" "$(psql_at_db "$Q" "h_good0" -c "select count(*) from t" 2>&1)" \
	    "$1: t holds exactly the rows of the segments before"
	is "$(psql_at_db "$Q" "h_$1" -c "select count(*) || ':' || sum(id) from victim" 2>&1)" "3:6" \
	    "$1: victim is intact"
}

# The reference: a store cut after segment 2 restores to this state.
cp -r "$S" "$T/s-good0"
for n in $(seq 3 "$nseg"); do rm "$(seg "$T/s-good0" "$n")"; done
psql_at "$Q" -c "create database h_good0" >/dev/null
"$RESTORE" --store "$T/s-good0" --target "$(dst h_good0)" --state-dir "$T/st-good0" >/dev/null 2>&1
ok $? "the store cut after segment 2 restores (the reference state)"

S3=0000000000000003
mk() { rm -rf "$T/s-$1"; cp -r "$S" "$T/s-$1"; }

mk flip; printf '\377' | dd of="$(seg "$T/s-flip" 3)" bs=1 seek=60 conv=notrunc 2>/dev/null
attack flip "segment $S3"; applied_upto flip 2

mk swap; mv "$(seg "$T/s-swap" 3)" "$T/x"; mv "$(seg "$T/s-swap" 4)" "$(seg "$T/s-swap" 3)"; mv "$T/x" "$(seg "$T/s-swap" 4)"
attack swap "segment $S3"; applied_upto swap 2

mk gone; rm "$(seg "$T/s-gone" 3)"
attack gone "segment $S3 is missing"; applied_upto gone 2

mk trunc; f=$(seg "$T/s-trunc" 3); head -c $(($(stat -c %s "$f") / 2)) "$f" > "$T/x"; mv "$T/x" "$f"
attack trunc "segment $S3"; applied_upto trunc 2

# Forged: refused by the decoder while the whole object is verified,
# before the applier sees a record (which would catch some of these too).
mk bodylen; python3 "$FORGE" "$(seg "$T/s-bodylen" 3)" bodylen
attack bodylen "segment $S3: object is [0-9]+ bytes but its header describes"
applied_upto bodylen 2
for how in framelen strlen ncols; do
	mk "$how"; python3 "$FORGE" "$(seg "$T/s-$how" 3)" "$how"
	attack "$how" "segment $S3: record [0-9]+ (does not decode|has length)"
	applied_upto "$how" 2
done
mk dropcol; python3 "$FORGE" "$(seg "$T/s-dropcol" 3)" dropcol t
attack dropcol "segment $S3: record [0-9]+ does not decode"; applied_upto dropcol 2

# A well-formed segment naming a relation the way an injection would.
mk inject; python3 "$FORGE" "$(seg "$T/s-inject" 3)" relname t 'x"; DROP TABLE victim; --'
attack inject "segment $S3"; applied_upto inject 2
is "$(psql_at_db "$Q" h_inject -c "select count(*) from pg_tables where tablename like 'x%'")" "0" \
    "inject: no table named by the forged relation was created"

# A relation name that would forge a log line: the log stays one line
# per event.
mk newline; python3 "$FORGE" "$(seg "$T/s-newline" 3)" relname t \
    "$(printf 'x\n2026-01-01T00:00:00.000000Z error restore: forged line\r')"
attack newline "segment $S3"; applied_upto newline 2

# A manifest naming its table the way an injection would: the base load
# takes the name as one identifier, finds no such table and stops; victim,
# created by the schema section, stays.
mk mtable; python3 "$FORGE" "$T/s-mtable/0000000000000001/base/manifest" table t \
    't FROM STDIN; DROP TABLE victim; --'
attack mtable 'base chunk .*relation "public.t FROM STDIN; DROP TABLE victim; --" does not exist'
is "$(psql_at_db "$Q" h_mtable -c "select count(*) from pg_tables where tablename = 'victim'")" "1" \
    "mtable: victim is still there"

# A garbage base manifest: nothing at all is done.
mk manifest; head -c 300 /dev/urandom > "$T/s-manifest/0000000000000001/base/manifest"
attack manifest "0000000000000001/base/manifest"
is "$(psql_at_db "$Q" h_manifest -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")" "0" \
    "manifest: nothing was created in the target"

# A garbage identity file: nothing at all is done.
mk ident; head -c 300 /dev/urandom > "$T/s-ident/logship.json"
attack ident "logship.json"
is "$(psql_at_db "$Q" h_ident -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")" "0" \
    "ident: nothing was created in the target"

done_testing
