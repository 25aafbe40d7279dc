#!/bin/sh
# --compression: a store written half zlib (base and first segments), half
# zstd (the agent restarted with the other option), encrypted, verifies and
# restores equal to the source; each segment's header names its codec; a
# bad value is a usage error naming what is accepted.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
S="$T/store"
(umask 077; openssl rand -hex 32 > "$T/key")

out=$("$AGENT" --source "$SRC" --store "$S" --compression lz4 2>&1); rc=$?
is "$rc" 2 "--compression lz4 is a usage error"
like "$out" 'expected zlib or zstd' "which names the codecs: $out"
printf 'compression = zstd:20\n' > "$T/bad.conf"
out=$("$AGENT" --source "$SRC" --store "$S" --config "$T/bad.conf" 2>&1); rc=$?
is "$rc" 2 "compression = zstd:20 in a config file is a usage error"
like "$out" 'zstd is a whole number from 1 to 19' "which gives the range: $out"

psql_at "$P" -c "CREATE TABLE t (id int primary key, v text, n numeric)" \
    -c "INSERT INTO t SELECT g, md5(g::text), g * 1.5 FROM generate_series(1, 20000) g" >/dev/null
# half 1: zlib, base included
"$AGENT" --source "$SRC" --store "$S" --init --key-file "$T/key" \
    --compression zlib --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
psql_at "$P" -c "UPDATE t SET v = v || 'a' WHERE id % 3 = 0" \
    -c "INSERT INTO t SELECT g, repeat('x', g % 500), g FROM generate_series(20001, 30000) g" >/dev/null
END1=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $A; wait $A
"$AGENT" --source "$SRC" --store "$S" --key-file "$T/key" --compression zlib \
    --endpos "$END1" >> "$T/agent.log" 2>&1
ok $? "the zlib half is stored"
# half 2: zstd, the same agent restarted with the other option
psql_at "$P" -c "DELETE FROM t WHERE id % 7 = 0" \
    -c "UPDATE t SET n = n + 1 WHERE id % 5 = 0" \
    -c "INSERT INTO t SELECT g, md5(g::text), NULL FROM generate_series(30001, 40000) g" >/dev/null
END2=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --key-file "$T/key" --compression zstd:5 \
    --endpos "$END2" >> "$T/agent.log" 2>&1
ok $? "the zstd half is stored"
like "$(grep 'streaming generation' "$T/agent.log" | head -n 1)" 'compression zlib:3$' \
    "the agent's log names its codec and level (zlib:3)"
like "$(grep 'streaming generation' "$T/agent.log" | tail -n 1)" 'compression zstd:5$' \
    "and after the restart zstd:5"

"$RESTORE" cat --store "$S" --key-file "$T/key" > "$T/all.json" 2> "$T/cat.err"
ok $? "cat decodes the mixed store"
codecs=$(jq -r 'select(.type=="header") | .compression' "$T/all.json" | uniq | tr '\n' ' ')
is "$codecs" "zlib zstd " "segments: zlib first, then zstd (in order)"
chunks=$(ls "$S"/*/base/ | grep -vc manifest)
is "$(grep -l zlib $(ls -d "$S"/*/base/* | grep -v manifest) | wc -l | tr -d ' ')" "$chunks" \
    "every base chunk ($chunks) was written with zlib"
check "verify passes on the mixed, encrypted store" "$RESTORE" verify --store "$S" --key-file "$T/key"
"$RESTORE" --store "$S" --target "$DST" --state-dir "$T/state" --key-file "$T/key" > "$T/restore.log" 2>&1
is "$?" 0 "restore of the mixed store exits 0"
table_sums "$P" > "$T/a"; table_sums "$Q" > "$T/b"
check "target equals source" diff "$T/a" "$T/b"

done_testing
