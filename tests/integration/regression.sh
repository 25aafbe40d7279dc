#!/bin/sh
# Fidelity on a database nobody here wrote: PostgreSQL's own regression
# database (its parallel schedule, from Debian's source of the installed
# server, fetched by tools/bootstrap) as the base, then a stream of updates
# and deletes over every one of its tables.  The restored target must equal
# the source by fingerprint (lib.sh: every table, partition, view,
# materialized view, large object and the schema), unlogged tables aside.
. "$(dirname "$0")/lib.sh"
SQL="$top_srcdir/tests/integration/sql"
PGV=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null)
REGRESS="${LOGSHIP_PGSRC:-/opt/logship-pgsrc}/$PGV/src/test/regress"
PGREGRESS="$(dirname "$PG_BINDIR")/lib/pgxs/src/test/regress/pg_regress"
[ -f "$REGRESS/parallel_schedule" ] ||
	{ echo "Bail out! no regression SQL in $REGRESS: run tools/bootstrap"; exit 1; }

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=regression"
S="$T/store"
mkdir -p "$T/regress"; [ "$(id -u)" -eq 0 ] && chown postgres: "$T/regress"
t0=$(date +%s)
(cd "$REGRESS" && pg_as "$PGREGRESS" --inputdir=. --outputdir="$T/regress" --bindir="$PG_BINDIR" \
	--host=127.0.0.1 --port="$P" --user=postgres --schedule=parallel_schedule \
	--dlpath="$(dirname "$PG_BINDIR")/lib" --max-connections=4 > "$T/regress.log" 2>&1)
diag "pg_regress: $(grep -E 'tests (passed|failed)' "$T/regress.log" | tr -s ' ') in $(( $(date +%s) - t0 )) s (failures are from regress.so, which Debian does not ship)"
n=$(psql_at_db "$P" regression -c "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.relkind = 'r' and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'")
ok "$([ "$n" -gt 400 ]; echo $?)" "the regression database has its tables ($n)"

# As a user would: every table gets a replica identity that finds its rows
# (FULL where there is no key, or where the key is a generated column, which
# PostgreSQL does not send), and materialized views are refreshed so that
# the source's are not stale (a refresh on the target computes them anew).
psql_at_db "$P" regression -c "select format('ALTER TABLE %s REPLICA IDENTITY FULL;', c.oid::regclass)
	from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.relkind in ('r', 'p') and c.relpersistence = 'p' and n.nspname !~ '^pg_'
	and n.nspname <> 'information_schema' and (c.relreplident = 'n' or (c.relreplident = 'd' and
	(not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary) or
	exists (select 1 from pg_index i join pg_attribute a on a.attrelid = c.oid and a.attnum = any (i.indkey)
		where i.indrelid = c.oid and i.indisprimary and a.attgenerated <> ''))))" > "$T/ri.sql"
psql_at_db "$P" regression -f "$T/ri.sql" >/dev/null 2>"$T/ri.err"
ok $? "replica identities set ($(wc -l < "$T/ri.sql") tables)" || head -n 5 "$T/ri.err" | sed 's/^/# /'
"$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$P" -U postgres --section=post-data regression |
	grep '^REFRESH MATERIALIZED VIEW ' | psql_at_db "$P" regression >/dev/null 2>&1

"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent took the base and streams" ||
	tail -n 5 "$T/agent.log" | sed 's/^/# /'

psql_at_db "$P" regression -f "$SQL/dml-everywhere.sql" > "$T/dml.sql"
psql_at_db "$P" regression -v ON_ERROR_STOP=0 -f "$T/dml.sql" > "$T/dml.out" 2>&1
diag "stream: $(grep -c '^INSERT\|^UPDATE\|^DELETE' "$T/dml.sql") statements over every table, $(grep -c ERROR "$T/dml.out") refused by the source's own rules"
kill -TERM $APID; wait $APID
END=$(psql_at_db "$P" regression -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "agent stored everything up to $END"

psql_at "$Q" -c "create database regression" >/dev/null
t0=$(date +%s)
"$RESTORE" --store "$S" --target "host=127.0.0.1 port=$Q user=postgres dbname=regression" \
	--state-dir "$T/state" > "$T/restore.log" 2>&1
is "$?" 0 "restore exits 0" || grep -E 'error|warn' "$T/restore.log" | head -n 5 | sed 's/^/# /'
diag "restore: $(( $(date +%s) - t0 )) s; $(grep -o 'summary:.*' "$T/restore.log")"
like "$(cat "$T/restore.log")" "restoring [0-9]+ large object" "with the base's large objects"
fingerprint "$P" regression > "$T/fp.src"
fingerprint "$Q" regression > "$T/fp.dst"
diag "fingerprint: $(grep -c '^[rmv]' "$T/fp.src") relations, $(grep -c '^lo ' "$T/fp.src") large objects, $(grep -vc '^[rmv]\|^lo ' "$T/fp.src") lines of schema"
[ -n "${KEEP:-}" ] && cp "$T"/restore.log "$T"/fp.src "$T"/fp.dst /tmp/ 2>/dev/null
check "the target equals the source" diff "$T/fp.src" "$T/fp.dst"
is "$(grep -c ' unlogged$' "$T/fp.src")" "$(psql_at_db "$P" regression -c "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where relkind = 'r' and relpersistence = 'u' and n.nspname !~ '^pg_'")" \
	"unlogged tables are the only ones left out"
done_testing
