#!/bin/sh
# The base snapshot copy (agent/basecopy.c through tests/tools/basecopy_run):
# every table's chunks, concatenated, equal the table as it was at the
# exported snapshot, although rows change right after the snapshot and
# while the copy runs; generated columns are skipped like plain COPY does;
# partitioned tables come as their leaves; a big table splits into ordered
# ctid chunks; pg_dump's sections are stored; verify accepts the base; an
# encrypted base needs its key; the password never reaches pg_dump's argv;
# missing tables, a failing pg_dump, a worker that cannot start and a stop
# request give one clear line.
. "$(dirname "$0")/lib.sh"

BASECOPY="$top_builddir/tests/tools/basecopy_run"
BLOBCAT="$top_builddir/tests/tools/blobcat"
[ -x "$BASECOPY" ] && [ -x "$BLOBCAT" ] || skip_all "basecopy_run or blobcat not built"
command -v jq >/dev/null || skip_all "jq not installed"
pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
CONN="host=127.0.0.1 port=$P user=postgres dbname=postgres"
CHUNK=4194304

psql_at "$P" >/dev/null <<'SQL'
CREATE SCHEMA app;
CREATE TABLE app.types (id int PRIMARY KEY, t text, n numeric(12,3), f float8,
	b bytea, ts timestamptz, d date, j jsonb, arr int[], flag boolean,
	u uuid, iv interval);
INSERT INTO app.types SELECT g,
	CASE WHEN g % 5 = 0 THEN NULL ELSE 'row ' || g || E'\ttab\nline\\back' END,
	g * 1.5, g / 3.0, CASE WHEN g % 3 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
	'2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
	CASE WHEN g % 7 = 0 THEN NULL ELSE date '2024-01-01' + g END,
	jsonb_build_object('g', g, 's', 'x"y'), ARRAY[g, NULL, g + 1], g % 2 = 0,
	md5(g::text)::uuid, g * interval '1 minute 3 seconds'
	FROM generate_series(1, 1000) g;
CREATE TABLE public.gen (id int PRIMARY KEY, a int, dropme text,
	doubled int GENERATED ALWAYS AS (a * 2) STORED, note text);
INSERT INTO public.gen (id, a, dropme, note)
	SELECT g, g, 'x', 'n' || g FROM generate_series(1, 100) g;
ALTER TABLE public.gen DROP COLUMN dropme;
CREATE TABLE public.measure (id int, region text, v int) PARTITION BY LIST (region);
CREATE TABLE public.measure_eu PARTITION OF public.measure FOR VALUES IN ('eu');
CREATE TABLE public.measure_us PARTITION OF public.measure FOR VALUES IN ('us');
INSERT INTO public.measure SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g
	FROM generate_series(1, 500) g;
CREATE TABLE public.big (id bigint PRIMARY KEY, payload text);
INSERT INTO public.big SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 6)
	FROM generate_series(1, 120000) g;
CREATE INDEX big_payload_idx ON public.big (left(payload, 8));
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Odd""Name" ("Col 1" int, "sel""ect" text);
INSERT INTO "Odd Schema"."Odd""Name" SELECT g, 'v' || g FROM generate_series(1, 10) g;
CREATE TABLE public.empty (id int);
CREATE TABLE public.nocols ();
INSERT INTO public.nocols DEFAULT VALUES;
INSERT INTO public.nocols DEFAULT VALUES;
CREATE PUBLICATION logship FOR ALL TABLES;
VACUUM ANALYZE;
SQL
ok $? "source tables created"

# name|SQL relation|columns as plain COPY TO would write them
TABLES='app.types|app.types|*
public.gen|public.gen|id, a, note
public.measure_eu|public.measure_eu|*
public.measure_us|public.measure_us|*
public.big|public.big|*
Odd Schema.Odd"Name|"Odd Schema"."Odd""Name"|*
public.empty|public.empty|*
public.nocols|public.nocols|*'

# expect DIR: every table's rows now, sorted, into DIR/<name>
expect() {
	mkdir -p "$1"
	printf '%s\n' "$TABLES" | while IFS='|' read -r name rel cols; do
		psql_at "$P" -c "COPY (SELECT $cols FROM ONLY $rel) TO STDOUT" |
		    LC_ALL=C sort > "$1/$name"
	done
}

# chunks STORE GEN SCHEMA NAME [KEYFILE]: a table's chunks in manifest order
chunks() {
	"$BLOBCAT" "$1/$2/base/manifest" ${5:+"$5"} |
	    jq -r --arg s "$3" --arg n "$4" \
		'.tables[] | select(.schema == $s and .name == $n) | .chunks[].key' |
	    while read -r k; do "$BLOBCAT" "$1/$k" ${5:+"$5"} || echo "BLOBCAT FAILED $k"; done
}

# same_tables STORE GEN EXPECTDIR [KEYFILE]: a line per table that differs
same_tables() {
	printf '%s\n' "$TABLES" | while IFS='|' read -r name rel cols; do
		chunks "$1" "$2" "${name%%.*}" "${name#*.}" ${4:+"$4"} |
		    LC_ALL=C sort > "$T/got"
		if cmp -s "$T/got" "$3/$name"; then
			echo "ok $name"
		else
			echo "DIFFERS $name: got $(wc -l < "$T/got") rows, want $(wc -l < "$3/$name")"
		fi
	done
}

expect "$T/exp1"
is "$(wc -l < "$T/exp1/public.big" | tr -d ' ')" 120000 "big table has 120000 rows"
is "$(psql_at "$P" -c "SELECT pg_relation_size('public.big') > 25000000")" t \
	"big table is over 25 MB"

# Changes made after the snapshot: at once (before the copy starts), and in
# a second session that the hook lets go and that runs along the copy.
mkfifo "$T/go"
( read -r go < "$T/go" && for i in 1 2 3 4 5 6; do
	echo "UPDATE public.big SET payload = 'during $i' WHERE id % 1000 = $i;
	      INSERT INTO public.big SELECT g, 'during' FROM generate_series(300000 + $i * 1000, 300500 + $i * 1000) g;
	      SELECT pg_sleep(0.3);"
  done | psql_at "$P" >/dev/null ) &
bgpid=$!
track_pid $bgpid
cat > "$T/after-snapshot.sh" <<EOF
#!/bin/sh
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $P -U postgres -d postgres "\$@"; }
psql <<'SQL' || exit 1
UPDATE public.big SET payload = 'changed' WHERE id % 100 = 0;
DELETE FROM public.big WHERE id <= 1000;
INSERT INTO public.big SELECT g, 'new' FROM generate_series(200001, 220000) g;
UPDATE app.types SET t = 'after', b = NULL WHERE id <= 10;
DELETE FROM public.gen WHERE id > 50;
UPDATE public.gen SET a = -a;
INSERT INTO public.measure VALUES (9999, 'eu', 1), (9998, 'us', 2);
INSERT INTO public.empty VALUES (1);
INSERT INTO "Odd Schema"."Odd""Name" VALUES (11, 'late');
SQL
echo go > "$T/go"
touch "$T/after-snapshot.ran"
EOF

S1="$T/store1"
GEN1=00000001000000a1
BASECOPY_AFTER_SNAPSHOT="sh $T/after-snapshot.sh" \
	"$BASECOPY" "$CONN" "$S1" $GEN1 2 $CHUNK > "$T/run1.log" 2>&1; rc=$?
is "$rc" 0 "basecopy_run jobs=2 exits 0"
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/run1.log" | tail -n 20
ok "$([ -f "$T/after-snapshot.ran" ]; echo $?)" "rows were changed after the snapshot"
bgrc=none
[ -f "$T/after-snapshot.ran" ] && { wait $bgpid; bgrc=$?; }
is "$bgrc" 0 "the concurrent session ran its changes"
is "$(psql_at "$P" -c "SELECT count(*) FILTER (WHERE payload = 'changed') > 0 AND count(*) FILTER (WHERE payload LIKE 'during%') > 0 FROM public.big")" t \
	"the source now differs from the snapshot"
like "$(cat "$T/run1.log")" "info +base: base copy done: tables=8 chunks=[0-9]+ rows=[0-9]+ bytes=[0-9]+ seconds=[0-9.]+ rate=[0-9.]+ MB/s" \
	"a summary line with tables, chunks, rows, bytes, seconds and rate"
like "$(cat "$T/run1.log")" "copied public.big chunk 3 rows=[0-9]+ bytes=[0-9]+ \\([0-9]+ chunks stored\\)" "a progress line per chunk"

"$BLOBCAT" "$S1/$GEN1/base/manifest" > "$T/m1.json"
is "$?" 0 "the manifest is a valid blob"
is "$(jq -r '.tables[] | "\(.schema).\(.name)"' "$T/m1.json" | tr '\n' ',')" \
	'Odd Schema.Odd"Name,app.types,public.big,public.empty,public.gen,public.measure_eu,public.measure_us,public.nocols,' \
	"the manifest lists the leaf tables by schema and name, not the partitioned parent"
nbig=$(jq '.tables[] | select(.name == "big") | .chunks | length' "$T/m1.json")
ok "$([ "$nbig" -ge 5 ]; echo $?)" "the big table is split into $nbig chunks of about 4 MiB"
want=$(i=0; while [ $i -lt "$nbig" ]; do printf -- '-%08x,' $i; i=$((i + 1)); done)
is "$(jq -r '.tables[] | select(.name == "big") | .chunks[].key' "$T/m1.json" | sed 's/.*\(-[0-9a-f]\{8\}\)$/\1/' | tr '\n' ',')" \
	"$want" "the big table's chunks are numbered 0, 1, 2, ... in manifest order"
# under 3 workers a table is one plain COPY (a ctid range scan costs twice
# its CPU), cut into chunks after the row that fills CHUNK bytes
is "$(jq --argjson c $CHUNK '[.tables[] | select(.name == "big") | .chunks[:-1][] | select(.bytes < $c or .bytes > $c + 65536)] | length' "$T/m1.json")" 0 \
	"with 2 workers each of the big table's chunks but the last is cut at the first row past $CHUNK bytes"
is "$(jq '[.tables[] | select(.name == "big") | .chunks[].rows] | add' "$T/m1.json")" 120000 \
	"the chunks' row counts add up to the snapshot's rows"
is "$(jq '[.tables[] | select(.name == "nocols") | .chunks[].rows] | add' "$T/m1.json")" 2 \
	"a table without columns keeps its rows"
is "$(same_tables "$S1" $GEN1 "$T/exp1" | grep -v '^ok ' )" "" \
	"every table's chunks equal the table at the snapshot (8 tables)"
chunks "$S1" $GEN1 public gen | head -n 1 > "$T/gen.row"
is "$(awk -F '\t' '{print NF}' "$T/gen.row")" 3 "the generated column is not in the copy"

"$BLOBCAT" "$S1/$GEN1/base/pre-data" > "$T/pre.sql"
is "$?" 0 "pre-data is a valid blob"
"$BLOBCAT" "$S1/$GEN1/base/post-data" > "$T/post.sql"
like "$(cat "$T/pre.sql")" "^CREATE TABLE public\.big \(" "pre-data creates the tables"
like "$(cat "$T/pre.sql")" "GENERATED ALWAYS AS \(\(a \* 2\)\) STORED" "pre-data keeps the generated column"
like "$(cat "$T/pre.sql")" "ALTER TABLE public\.big OWNER TO postgres" "pre-data keeps owners"
like "$(cat "$T/post.sql")" "CREATE INDEX big_payload_idx ON public\.big" "post-data creates the indexes"
like "$(cat "$T/post.sql")" "ADD CONSTRAINT big_pkey PRIMARY KEY \(id\)" "post-data adds the primary keys"
is "$(grep -c '^COPY ' "$T/pre.sql" "$T/post.sql" | awk -F: '{s += $2} END {print s}')" 0 "the sections hold no data"
is "$(jq -r '.pre_data.key, .post_data.key' "$T/m1.json" | tr '\n' ' ')" \
	"$GEN1/base/pre-data $GEN1/base/post-data " "the manifest names both sections"
is "$(psql_at "$P" -c "SELECT count(*) FROM pg_replication_slots")" 0 "the slot was dropped"

out=$("$RESTORE" verify --store "$S1" 2>&1); rc=$?
is "$rc" 0 "logship-restore verify accepts the store"
like "$out" "generation $GEN1: base snapshot good" "verify reports the base snapshot good"
cp -r "$S1" "$T/bad"
k3=$(jq -r '.tables[] | select(.name == "big") | .chunks[2].key' "$T/m1.json")
printf '\377' | dd of="$T/bad/$k3" bs=1 seek=300 conv=notrunc 2>/dev/null
out=$("$RESTORE" verify --store "$T/bad" 2>&1); rc=$?
is "$rc" 1 "verify fails on a damaged chunk"
like "$out" "BAD .*$k3" "naming the chunk"

# Quiet source: one worker, then two, for the throughput comparison.
expect "$T/exp2"
for j in 1 2 3; do
	"$BASECOPY" "$CONN" "$T/store2-$j" 00000001000000b$j $j $CHUNK > "$T/run2-$j.log" 2>&1
	is "$?" 0 "basecopy_run jobs=$j exits 0"
	is "$(same_tables "$T/store2-$j" 00000001000000b$j "$T/exp2" | grep -v '^ok ')" "" \
		"jobs=$j: every table equals the source"
	diag "jobs=$j: $(grep -o 'base copy done.*' "$T/run2-$j.log")"
done
"$BLOBCAT" "$T/store2-3/00000001000000b3/base/manifest" > "$T/m23.json"
is "$(jq --argjson c $CHUNK '[.tables[] | select(.name == "big") | .chunks[] | select(.bytes < $c or .bytes > $c + 65536)] | length > 1' "$T/m23.json")" true \
	"with 3 workers the big table is split into ctid ranges, not cut at $CHUNK bytes"
is "$(jq '.tables[] | select(.name == "big") | .chunks | length >= 5' "$T/m23.json")" true "in 5 or more of them"

# Password authentication, encryption, and no secret in pg_dump's argv.
psql_at "$P" >/dev/null <<'SQL'
CREATE ROLE pwuser LOGIN REPLICATION PASSWORD 'secret';
GRANT pg_read_all_data TO pwuser;
SQL
hba="$src_DIR/data/pg_hba.conf"
{ echo "host all pwuser 127.0.0.1/32 scram-sha-256"; cat "$hba"; } > "$T/hba" && cat "$T/hba" > "$hba"
pg_as "$PG_BINDIR/pg_ctl" -D "$src_DIR/data" -l "$src_DIR/log" -w restart >/dev/null
ok $? "cluster restarted with password authentication for pwuser"
env -u PGPASSWORD "$PG_BINDIR/psql" -X -w -h 127.0.0.1 -p "$P" -U pwuser -d postgres -c 'SELECT 1' >/dev/null 2>&1
is "$?" 2 "pwuser cannot connect without its password"

cat > "$T/pg_dump" <<EOF
#!/bin/sh
tr '\\000' ' ' < /proc/\$\$/cmdline >> "$T/dump.argv"; echo >> "$T/dump.argv"
env | grep -E '^PG(USER|PASSWORD|HOST|PORT|DATABASE|SSLMODE)=' | sed 's/^PGPASSWORD=.*/PGPASSWORD=<set>/' | sort >> "$T/dump.env"
exec "$PG_BINDIR/pg_dump" "\$@"
EOF
chmod +x "$T/pg_dump"
od -An -tx1 /dev/urandom | tr -d ' \n' | head -c 64 > "$T/key"
head -c 32 /dev/urandom > "$T/key2"
chmod 600 "$T/key" "$T/key2"	# key files others may read are refused
expect "$T/exp3"
S3="$T/store3"
GEN3=00000001000000a3
LOGSHIP_PG_DUMP="$T/pg_dump" "$BASECOPY" \
	"host=127.0.0.1 port=$P user=pwuser password=secret dbname=postgres sslmode=disable keepalives=1" \
	"$S3" $GEN3 2 $CHUNK "$T/key" > "$T/run3.log" 2>&1; rc=$?
is "$rc" 0 "encrypted copy as pwuser with password authentication exits 0"
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/run3.log" | tail -n 20
is "$(wc -l < "$T/dump.argv" | tr -d ' ')" 2 "pg_dump ran twice (pre-data, post-data)"
like "$(cat "$T/dump.argv")" "--section=pre-data --snapshot=[0-9A-F-]+ --format=plain --exclude-schema=logship --no-password --dbname=keepalives='1' ?\$" \
	"pg_dump gets the snapshot and the options without an environment variable in argv"
ok "$(grep -q secret "$T/dump.argv"; [ $? -ne 0 ]; echo $?)" "the password is not in pg_dump's command line"
ok "$(grep -q pwuser "$T/dump.argv"; [ $? -ne 0 ]; echo $?)" "nor are the other connection options"
is "$(sort -u "$T/dump.env" | tr '\n' ' ')" \
	"PGDATABASE=postgres PGHOST=127.0.0.1 PGPASSWORD=<set> PGPORT=$P PGSSLMODE=disable PGUSER=pwuser " \
	"pg_dump gets them in its environment"
is "$(grep -c secret "$T/run3.log")" 0 "the password is not in the log"
is "$(same_tables "$S3" $GEN3 "$T/exp3" "$T/key" | grep -v '^ok ')" "" "encrypted: every table equals the source"
out=$("$RESTORE" verify --store "$S3" --key-file "$T/key" 2>&1); rc=$?
is "$rc" 0 "verify with the key accepts the encrypted base"
like "$out" "generation $GEN3: base snapshot good" "and says so"
out=$("$RESTORE" verify --store "$S3" 2>&1); rc=$?
is "$rc" 1 "verify without the key fails"
out=$("$RESTORE" verify --store "$S3" --key-file "$T/key2" 2>&1); rc=$?
is "$rc" 1 "verify with another key fails"
k=$(jq -r '.tables[0].chunks[0].key' "$T/m1.json" | sed "s/^$GEN1/$GEN3/")
"$BLOBCAT" "$S3/$k" > /dev/null 2>&1
is "$?" 1 "a chunk cannot be read without the key"
"$BLOBCAT" "$S3/$GEN3/base/pre-data" "$T/key" | grep -q "CREATE TABLE public.big"
is "$?" 0 "pre-data decrypts with the key"

# An explicit table list: a partitioned table stands for its leaves.
S4="$T/store4"
BASECOPY_TABLES="public.measure app.types" "$BASECOPY" "$CONN" "$S4" 00000001000000a4 3 $CHUNK > "$T/run4.log" 2>&1
is "$?" 0 "copy of a table list exits 0"
is "$("$BLOBCAT" "$S4/00000001000000a4/base/manifest" | jq -r '.tables[] | "\(.schema).\(.name)"' | tr '\n' ' ')" \
	"app.types public.measure_eu public.measure_us " "only the listed tables, the partitioned one as its leaves"

# Errors: one line naming what is wrong.
out=$(BASECOPY_TABLES="public.big public.nope" "$BASECOPY" "$CONN" "$T/store5" 00000001000000a5 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a missing table fails"
like "$out" "^basecopy_run: base copy: table public\.nope does not exist" "naming the table"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 1 "in one line"
ok "$([ ! -e "$T/store5/00000001000000a5/base/manifest" ]; echo $?)" "and writes no manifest"
out=$(BASECOPY_PUBLICATION=nopub "$BASECOPY" "$CONN" "$T/store5" 00000001000000a5 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a missing publication fails"
like "$out" "publication nopub does not exist" "naming the publication"

printf '#!/bin/sh\necho "pg_dump: warning: something" >&2\necho "pg_dump: error: simulated failure" >&2\nexit 1\n' > "$T/bad_dump"
chmod +x "$T/bad_dump"
out=$(LOGSHIP_PG_DUMP="$T/bad_dump" "$BASECOPY" "$CONN" "$T/store6" 00000001000000a6 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a failing pg_dump fails the copy"
like "$out" "pg_dump --section=pre-data failed \(exit 1\): pg_dump: error: simulated failure" \
	"with pg_dump's last line of stderr"

# The schema dumps run beside the copy, not before it: with a pg_dump that
# takes 3 s to start, chunks are copied before pre-data is dumped, and the
# base is whole.  A slow pg_dump that then fails still fails the copy.
printf '#!/bin/sh\nsleep 3\nexec "%s/pg_dump" "$@"\n' "$PG_BINDIR" > "$T/slow_dump"
chmod +x "$T/slow_dump"
LOGSHIP_PG_DUMP="$T/slow_dump" "$BASECOPY" "$CONN" "$T/store10" 00000001000000c0 2 $CHUNK > "$T/run10.log" 2>&1
is "$?" 0 "a copy with a slow pg_dump exits 0"
first_chunk=$(grep -n "copied public.big chunk" "$T/run10.log" | head -n 1 | cut -d: -f1)
pre=$(grep -n "pre-data dumped" "$T/run10.log" | cut -d: -f1)
ok "$([ -n "$first_chunk" ] && [ -n "$pre" ] && [ "$first_chunk" -lt "$pre" ]; echo $?)" \
	"chunks were copied while pg_dump ran (first chunk at line ${first_chunk:-none}, pre-data at ${pre:-none})"
is "$("$BLOBCAT" "$T/store10/00000001000000c0/base/manifest" | jq -r '.pre_data.key, .post_data.key' | tr '\n' ' ')" \
	"00000001000000c0/base/pre-data 00000001000000c0/base/post-data " "its manifest names both sections"
is "$(same_tables "$T/store10" 00000001000000c0 "$T/exp3" | grep -v '^ok ')" "" "and every table equals the source"
printf '#!/bin/sh\nsleep 2\necho "pg_dump: error: simulated late failure" >&2\nexit 1\n' > "$T/late_bad_dump"
chmod +x "$T/late_bad_dump"
out=$(LOGSHIP_PG_DUMP="$T/late_bad_dump" "$BASECOPY" "$CONN" "$T/store11" 00000001000000c1 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a pg_dump failing after the chunks were copied fails the copy"
like "$out" "pg_dump --section=pre-data failed \(exit 1\): pg_dump: error: simulated late failure" \
	"with pg_dump's error"
ok "$([ ! -e "$T/store11/00000001000000c1/base/manifest" ]; echo $?)" "and writes no manifest"

out=$(psql_at "$P" -c "REVOKE pg_read_all_data FROM pwuser" 2>&1)
out=$(LOGSHIP_PG_DUMP="$T/pg_dump" BASECOPY_TABLES="public.big" "$BASECOPY" \
	"host=127.0.0.1 port=$P user=pwuser password=secret dbname=postgres" \
	"$T/store7" 00000001000000a7 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a table the role may not read fails"
like "$out" "table public\.big.*permission denied for table big" "with PostgreSQL's message and the table"

out=$(LOGSHIP_TEST_FAIL_WORKER_START=2 "$BASECOPY" "$CONN" "$T/store9" 00000001000000a9 3 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a copy worker that cannot start fails the copy"
like "$out" "basecopy_run: base copy: cannot start worker 2 of 3: " "naming the worker and the cause"
ok "$([ ! -e "$T/store9/00000001000000a9/base/manifest" ]; echo $?)" "and writes no manifest"

out=$(BASECOPY_STOP=1 "$BASECOPY" "$CONN" "$T/store8" 00000001000000a8 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a stop request ends the copy"
like "$out" "base copy interrupted" "saying it was interrupted"
ok "$([ ! -e "$T/store8/00000001000000a8/base/manifest" ]; echo $?)" "without a manifest"
# a stop request in the middle of a table (copied whole, cut into chunks):
# the copy ends at the next row, not at the end of the table
out=$(BASECOPY_STOP_AFTER_CHUNK=1 "$BASECOPY" "$CONN" "$T/store12" 00000001000000c2 2 $CHUNK 2>&1); rc=$?
is "$rc" 1 "a stop request after the first chunk ends the copy"
like "$out" "base copy interrupted" "saying it was interrupted"
nb=$(printf '%s\n' "$out" | grep -c "copied public.big chunk")
ok "$([ "$nb" -le 1 ]; echo $?)" "within the big table: $nb of its chunks stored, not all $nbig"
ok "$([ ! -e "$T/store12/00000001000000c2/base/manifest" ]; echo $?)" "without a manifest"
is "$(psql_at "$P" -c "SELECT count(*) FROM pg_replication_slots")" 0 "no slot is left behind"
is "$(pgrep -f "$T/pg_dump" | wc -l | tr -d ' ')" 0 "no pg_dump is left running"

# A connection cut in the middle of a COPY.  The reader polls its socket
# before it sleeps (copy_wait): a lost connection ends the copy with the
# connection's error, and neither spins nor hangs.  The copy goes through
# a TCP proxy that passes 1 MB/s per connection, so that the big table's
# COPY (over 25 MB) is still running when the proxy cuts every connection,
# once pg_dump is done (else its error may be the one reported).
FAULTPROXY="$top_builddir/tests/tools/faultproxy"
echo slow > "$T/proxy.mode"
"$FAULTPROXY" --upstream "127.0.0.1:$P" --mode-file "$T/proxy.mode" --rate 1048576 \
	> "$T/proxy.port" 2> "$T/proxy.log" &
PROXY=$!; track_pid $PROXY
i=0; until [ -s "$T/proxy.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
PCONN="host=127.0.0.1 port=$(head -n 1 "$T/proxy.port") user=postgres dbname=postgres"
BASECOPY_SLOT=basecopy_cut BASECOPY_TABLES="public.big" "$BASECOPY" "$PCONN" "$T/store13" 00000001000000c3 2 $CHUNK \
	> "$T/run13.log" 2>&1 &
CPID=$!; track_pid $CPID
wait_row "$P" postgres "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %big%' AND state = 'active'" $CPID
i=0; until grep -q "post-data dumped" "$T/run13.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
sleep 1	# the dump thread's last query (large objects) on the control connection
copying=$(psql_at "$P" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %big%' AND state = 'active'")
kill -USR1 $PROXY
i=0; while kill -0 $CPID 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
kill -0 $CPID 2>/dev/null; running=$?
[ "$running" -eq 0 ] && kill -9 $CPID
wait $CPID; rc=$?
is "$copying" 1 "the big table's COPY was running when the proxy cut the connections"
is "$running" 1 "the copy ended within 30 s of the cut"
is "$rc" 1 "a connection cut mid-COPY fails the copy"
like "$(grep -v ' info ' "$T/run13.log")" "^basecopy_run: .*COPY: (server closed the connection unexpectedly|could not receive data from server)" \
	"with the COPY connection's error"
ok "$([ ! -e "$T/store13/00000001000000c3/base/manifest" ]; echo $?)" "and writes no manifest"
kill $PROXY; wait $PROXY 2>/dev/null
# the cut left the tool's slot behind (its connection was gone): drop it
# once its walsender has noticed
i=0; until [ "$(psql_at "$P" -c "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = 'basecopy_cut' AND NOT active" 2>/dev/null)" = 1 ] ||
	[ $i -gt 150 ]; do sleep 0.2; i=$((i+1)); done

# Over TLS, where the reader leaves the waiting to libpq: OpenSSL may hold
# the rest of a record while the socket is empty, which poll() does not
# see.  The server takes TLS connections only (hostnossl ... reject), so
# the copy below cannot have gone in the clear.
openssl req -new -x509 -days 2 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$src_DIR/data/server.key" -out "$src_DIR/data/server.crt" >/dev/null 2>&1
chmod 600 "$src_DIR/data/server.key"
[ "$(id -u)" -eq 0 ] && chown postgres: "$src_DIR/data/server.key" "$src_DIR/data/server.crt"
{ echo "hostnossl all all 127.0.0.1/32 reject"; cat "$hba"; } > "$T/hba" && cat "$T/hba" > "$hba"
psql_at "$P" -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
i=0; while out=$("$PG_BINDIR/psql" -X -A -t -d "host=127.0.0.1 port=$P user=postgres dbname=postgres sslmode=disable" -c 'SELECT 1' 2>&1) &&
	[ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
like "$out" "rejects connection.*no encryption" "the source now refuses connections without TLS"
timeout 120 "$BASECOPY" "$CONN sslmode=require" "$T/store14" 00000001000000c4 2 $CHUNK > "$T/run14.log" 2>&1; rc=$?
is "$rc" 0 "a copy over TLS exits 0 (within 120 s)"
[ "$rc" -eq 0 ] || grep -v ' info ' "$T/run14.log" | tail -n 5 | sed 's/^/# /'
is "$(same_tables "$T/store14" 00000001000000c4 "$T/exp3" | grep -v '^ok ')" "" "over TLS every table equals the source"

done_testing
