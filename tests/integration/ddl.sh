#!/bin/sh
# DDL capture (logship-agent --ddl), the capture half of issue 11:
#  - without a superuser: one line naming the privilege and the fix, exit 1,
#    nothing installed, nothing in the store
#  - the install is idempotent and replaces an older version; run while
#    another session's ALTER TABLE is uncommitted, it keeps that change
#  - DDL on a live stream arrives as logship.ddl messages inside its own
#    transaction, in order with that transaction's rows, with the
#    definitions before and after (renames by attnum, retypes), for every
#    kind the restore will replay; none for a rolled-back savepoint or a
#    temporary table; also inside a transaction streamed in chunks
#  - a base taken after the install carries no event trigger
#  - a CREATE TABLE that --tables does not publish is warned about
#  - --ddl-uninstall removes everything
. "$(dirname "$0")/lib.sh"
BLOBCAT="$top_builddir/tests/tools/blobcat"
GEN=0000000000000001

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"
psql_at "$P" -c "ALTER SYSTEM SET logical_decoding_work_mem = '64kB'" \
	-c "select pg_reload_conf()" >/dev/null
psql_at "$P" -c "CREATE TABLE pre (id int primary key, n int, v text)" \
	-c "CREATE TABLE doomed (id int primary key)" \
	-c "CREATE TABLE big (id int primary key, pad text)" \
	-c "INSERT INTO pre VALUES (1, 7, 'seven')" >/dev/null

streams() { grep -cs "streaming generation" "$1"; }
wait_streaming() {	# wait_streaming LOG N: until the Nth session streams
	i=0; until [ "$(streams "$1")" -ge "$2" ] || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
	[ "$(streams "$1")" -ge "$2" ]
}
evtriggers() {
	psql_at "$P" -c "select count(*) from pg_event_trigger where evtname like 'logship\_%'"
}
functions() {
	psql_at "$P" -c "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where n.nspname = 'logship' and p.proname like 'ddl\_%'"
}

# 1. the privilege
psql_at "$P" -c "CREATE ROLE norm LOGIN REPLICATION" -c "GRANT CREATE ON DATABASE postgres TO norm" >/dev/null
NORM="host=127.0.0.1 port=$P user=norm dbname=postgres"
out=$("$AGENT" --source "$NORM" --store "$S" --init --ddl 2>&1); rc=$?
is "$rc" 1 "--ddl without a superuser exits 1"
like "$out" "--ddl needs a superuser on the source \(event triggers require it\) and role norm is not one: connect as a superuser or run without --ddl" \
	"naming the privilege, the role and the fix"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "in one line"
is "$(evtriggers)" 0 "nothing was installed"
is "$(find "$S" -type f 2>/dev/null | wc -l | tr -d ' ')" 0 "nothing was written to the store"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" 0 "and no slot was created"
out=$("$AGENT" --source "$NORM" --ddl-uninstall 2>&1); rc=$?
is "$rc" 1 "--ddl-uninstall without a superuser exits 1"
like "$out" "^logship-agent: --ddl-uninstall needs a superuser on the source" "saying so"

# 2. install, twice; the second replaces an older version
"$AGENT" --source "$SRC" --store "$S" --init --ddl --flush-interval 0.2 > "$T/agent.log" 2>&1 &
A=$!; track_pid $A
wait_streaming "$T/agent.log" 1; ok $? "the agent with --ddl streams"
kill -TERM $A; wait $A; ok $? "and stops cleanly on SIGTERM"
is "$(evtriggers)" 2 "two event triggers installed"
nfun=$(functions)
is "$(psql_at "$P" -c "select count(*) from logship.ddl_shadow")" 3 "the shadow holds the three tables"
is "$(psql_at "$P" -c "select def->'columns'->1->>'name' from logship.ddl_shadow where relid = 'pre'::regclass")" n \
	"with their columns"
psql_at "$P" -c "CREATE FUNCTION logship.ddl_old_version(int) RETURNS int LANGUAGE sql AS 'SELECT 1'" \
	-c "CREATE OR REPLACE FUNCTION logship.ddl_emit(event text, tag text, usr text, path text,
		query text, key text, list jsonb) RETURNS void LANGUAGE sql AS 'SELECT'" >/dev/null
"$AGENT" --source "$SRC" --store "$S" --ddl --flush-interval 0.2 >> "$T/agent.log" 2>&1 &
A=$!; track_pid $A
wait_streaming "$T/agent.log" 2; ok $? "a second --ddl run streams"
is "$(evtriggers)" 2 "still two event triggers"
is "$(functions)" "$nfun" "the same $nfun functions: an older version's are gone"
like "$(psql_at "$P" -c "select prosrc from pg_proc where proname = 'ddl_emit'")" "pg_logical_emit_message" \
	"and the replaced function is the current one"

# 2b. the install (at every start) while another session's ALTER TABLE is
# not yet committed: the shadow must not go back to the table's definition
# before it, or the next command's "before" misses that column
kill -TERM $A; wait $A
psql_at "$P" -c "BEGIN" -c "ALTER TABLE doomed ADD COLUMN racing int" -c "SELECT pg_sleep(3)" \
	-c "COMMIT" > "$T/racing.out" 2>&1 &
R=$!; track_pid $R
i=0; until [ "$(psql_at "$P" -c "select count(*) from pg_locks where relation = 'doomed'::regclass
	and mode = 'AccessExclusiveLock' and granted")" = 1 ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
"$AGENT" --source "$SRC" --store "$S" --ddl --flush-interval 0.2 >> "$T/agent.log" 2>&1 &
A=$!; track_pid $A
wait $R; ok $? "an ALTER TABLE was uncommitted while the agent started" || sed 's/^/# /' "$T/racing.out"
wait_streaming "$T/agent.log" 3; ok $? "that --ddl run streams"
is "$(psql_at "$P" -c "select def->'columns' @> '[{\"name\": \"racing\"}]' from logship.ddl_shadow
	where relid = 'doomed'::regclass")" t "the shadow keeps the column that ALTER TABLE added"

# 3. DDL while streaming
psql_at "$P" -f - > "$T/workload.out" 2>&1 <<'SQL'
CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL DEFAULT 'none', qty int,
  twice int GENERATED ALWAYS AS (qty * 2) STORED);
INSERT INTO items (qty) VALUES (1);
ALTER TABLE items ADD COLUMN note text;
ALTER TABLE items DROP COLUMN note;
ALTER TABLE items RENAME COLUMN name TO title;
INSERT INTO items (title, qty) VALUES ('renamed', 2);
ALTER TABLE pre ALTER COLUMN n TYPE bigint USING n * 10;
ALTER TABLE pre RENAME TO pre2;
CREATE INDEX items_qty ON items (qty);
CREATE SEQUENCE seq1 START 100 INCREMENT 5;
CREATE SCHEMA app;
CREATE TYPE mood AS ENUM ('sad', 'ok');
ALTER TYPE mood ADD VALUE 'happy';
DROP TABLE doomed;
CREATE TEMP TABLE scratch (x int);
BEGIN;
CREATE TABLE kept (id int primary key);
SAVEPOINT s;
CREATE TABLE ghost (id int primary key);
ROLLBACK TO SAVEPOINT s;
INSERT INTO kept VALUES (1);
COMMIT;
CREATE ROLE app_user LOGIN;
GRANT CREATE, USAGE ON SCHEMA app TO app_user;
SQL
ok $? "the DDL workload ran" || sed 's/^/# /' "$T/workload.out"
psql_at "$P" -c "INSERT INTO items (qty) VALUES (3); ALTER TABLE items ADD COLUMN extra int; INSERT INTO items (qty, extra) VALUES (4, 40)" >/dev/null
ok $? "a multi-statement query string with DDL between two inserts"
psql_at "$P" -c "SET search_path = app, public; CREATE TABLE widgets (id int primary key, m mood)" >/dev/null
ok $? "a table created under a custom search_path with unqualified names"
"$PG_BINDIR/psql" -X -q -h 127.0.0.1 -p "$P" -U app_user -d postgres \
	-c "CREATE TABLE app.owned (id int primary key)" >/dev/null
ok $? "a table created by a role that is no superuser"
psql_at "$P" -f - >/dev/null 2>"$T/big.err" <<'SQL'
BEGIN;
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;
ALTER TABLE big ADD COLUMN late int;
INSERT INTO big SELECT g, 'y', g FROM generate_series(5001, 10000) g;
COMMIT;
SQL
ok $? "a large transaction with DDL in the middle" || sed 's/^/# /' "$T/big.err"
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $A; wait $A; ok $? "the agent stops cleanly on SIGTERM"
"$AGENT" --source "$SRC" --store "$S" --ddl --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "the agent stored everything up to $END" || tail -n 5 "$T/agent.log" | sed 's/^/# /'
is "$(psql_at "$P" -c "select stream_txns > 0 from pg_stat_replication_slots where slot_name = 'logship'")" t \
	"the large transaction was streamed to the agent in chunks"

# 4. what the store holds
"$RESTORE" cat --store "$S" --format ndjson > "$T/cat.json"
ok $? "cat --format ndjson decodes the store"
jq -c 'select(.type == "message" and .prefix == "logship.ddl") | .content' "$T/cat.json" > "$T/ddl.json"
is "$(jq -r 'type' "$T/ddl.json" | sort -u)" object "a DDL message's content is shown as JSON"
is "$(jq -s 'map(select(.v == 1)) | length' "$T/ddl.json")" "$(wc -l < "$T/ddl.json" | tr -d ' ')" \
	"every one has version 1"
ddl() {	# ddl JQ-FILTER: apply to the messages with a command on ...
	jq -c "$1" "$T/ddl.json"
}
cmd() {	# cmd TAG IDENTITY: the first command with that tag and identity
	jq -c --arg t "$1" --arg i "$2" \
		'select(.event == "ddl_command_end") | .commands[] | select(.tag == $t and .identity == $i)' \
		"$T/ddl.json" | head -n 1
}
cols() {	# cols JSON (def or before): "attnum:name:type ..."
	printf '%s' "$1" | jq -r '[.columns[] | "\(.attnum):\(.name):\(.type)"] | join(" ")'
}

c=$(cmd "CREATE TABLE" public.items)
is "$(printf '%s' "$c" | jq -c '.before')" null "CREATE TABLE items: no definition before"
is "$(printf '%s' "$c" | jq -c '[.def.columns[] | [.name, .type, .notnull, .default, .identity, .generated]]')" \
	'[["id","integer",true,null,"a",""],["name","text",true,"'"'"'none'"'"'::text","",""],["qty","integer",false,null,"",""],["twice","integer",false,"(qty * 2)","","s"]]' \
	"its columns: key, default, identity, generated"
is "$(printf '%s' "$c" | jq -r '.def.constraints[] | "\(.type) \(.def)"')" "p PRIMARY KEY (id)" "its primary key"
is "$(printf '%s' "$c" | jq -r '[.def.replident, .def.relkind, .def.persistence, .in_extension] | join(" ")')" \
	"d r p false" "its replica identity, kind and persistence; not an extension's"
is "$(ddl 'select(.tag == "CREATE TABLE" and .commands[0].identity == "public.items_id_seq") | [.commands[].tag] | join(",")')" \
	'"CREATE SEQUENCE,CREATE TABLE,CREATE INDEX,ALTER SEQUENCE"' "its identity sequence and key index come in the same message"
is "$(ddl 'select(.tag == "CREATE TABLE") | .commands[] | select(.object_type == "sequence") | .def.owned_by' | head -n 1)" \
	'"public.items.id"' "the sequence is owned by items.id"

c=$(ddl 'select(.query == "ALTER TABLE items RENAME COLUMN name TO title;" or (.query | test("RENAME COLUMN name TO title"))) | .commands[0]')
is "$(cols "$(printf '%s' "$c" | jq -c .before)")" "1:id:integer 2:name:text 3:qty:integer 4:twice:integer" \
	"RENAME COLUMN: before, attnum 2 is name"
is "$(cols "$(printf '%s' "$c" | jq -c .def)")" "1:id:integer 2:title:text 3:qty:integer 4:twice:integer" \
	"and after, attnum 2 is title: a rename, not a drop and an add"
c=$(ddl 'select(.query | test("ADD COLUMN note")) | .commands[0]')
is "$(cols "$(printf '%s' "$c" | jq -c .def)")" "1:id:integer 2:name:text 3:qty:integer 4:twice:integer 5:note:text" \
	"ADD COLUMN: the new column at attnum 5"
c=$(ddl 'select(.event == "ddl_command_end" and (.query | test("DROP COLUMN note"))) | .commands[0]')
is "$(cols "$(printf '%s' "$c" | jq -c .before)") / $(cols "$(printf '%s' "$c" | jq -c .def)")" \
	"1:id:integer 2:name:text 3:qty:integer 4:twice:integer 5:note:text / 1:id:integer 2:name:text 3:qty:integer 4:twice:integer" \
	"DROP COLUMN: before with, after without it"
is "$(ddl 'select(.event == "sql_drop" and (.query | test("DROP COLUMN note"))) | .dropped[0] | [.object_type, .identity, .address_names[2]]')" \
	'["table column","public.items.note","note"]' "and a sql_drop message names the dropped column"

c=$(ddl 'select(.query | test("TYPE bigint USING")) | .')
is "$(printf '%s' "$c" | jq -r '.query')" "ALTER TABLE pre ALTER COLUMN n TYPE bigint USING n * 10;" \
	"ALTER COLUMN TYPE: the statement with its USING"
is "$(cols "$(printf '%s' "$c" | jq -c '.commands[0].before')") / $(cols "$(printf '%s' "$c" | jq -c '.commands[0].def')")" \
	"1:id:integer 2:n:integer 3:v:text / 1:id:integer 2:n:bigint 3:v:text" \
	"with the column's type before and after (a table from before the install)"
c=$(cmd "ALTER TABLE" public.pre2)
is "$(printf '%s' "$c" | jq -r '"\(.before.name) \(.def.name) \(.oid == .def.oid)"')" "pre pre2 true" \
	"RENAME TABLE: the same oid, the old and the new name"
is "$(cmd "CREATE INDEX" public.items_qty | jq -c .def)" \
	'{"def":"CREATE INDEX items_qty ON public.items USING btree (qty)","name":"items_qty","table":"items","valid":true,"schema":"public"}' \
	"CREATE INDEX: the index's definition"
is "$(cmd "CREATE SEQUENCE" public.seq1 | jq -c '.def | [.type, .start, .increment, .owned_by]')" \
	'["bigint",100,5,null]' "CREATE SEQUENCE: its parameters"
is "$(cmd "CREATE SCHEMA" app | jq -c .def)" '{"name":"app"}' "CREATE SCHEMA"
is "$(cmd "CREATE TYPE" public.mood | jq -c .def.labels)" '["sad","ok"]' "CREATE TYPE ... AS ENUM: its labels"
is "$(cmd "ALTER TYPE" public.mood | jq -c .def.labels)" '["sad","ok","happy"]' "ALTER TYPE ... ADD VALUE: the labels after"
is "$(ddl 'select(.tag == "DROP TABLE") | .dropped[] | select(.object_type == "table") | .identity')" '"public.doomed"' \
	"DROP TABLE: a sql_drop message naming the table"
is "$(grep -c 'scratch' "$T/ddl.json")" 0 "a temporary table is not captured"
is "$(grep -c 'ghost' "$T/ddl.json")" 0 "DDL rolled back to a savepoint is not captured"
is "$(cmd "CREATE TABLE" public.kept | jq -r .identity)" public.kept "the rest of that transaction is"
c=$(ddl 'select(.commands[0].identity == "app.widgets")')
is "$(printf '%s' "$c" | jq -r '"\(.search_path)|\(.commands[0].schema)|\(.commands[0].def.columns[1].type)"')" \
	"app, public|app|public.mood" "unqualified names under a custom search_path: the schema and the types resolved"
is "$(cmd "CREATE TABLE" app.owned | jq -r .def.name) $(ddl 'select(.commands[0].identity == "app.owned") | .user')" \
	'owned "app_user"' "DDL by a role that is no superuser is captured and names the role"

# 5. in commit order with the transaction's rows: one line per record of
# each transaction (logship's own shadow rows and relation records left out)
jq -r 'select(.type != "relation" and (.relation // "" | startswith("logship.") | not)) |
	if .type == "message" and .prefix == "logship.ddl" then
		"ddl \(.content.event) \(.content.commands[0].identity // .content.dropped[0].identity)"
	elif .type == "insert" then "insert \(.relation) \(.new | del(.id) | tostring)"
	else .type end' "$T/cat.json" |
	awk '/^begin/ { t = "" } { t = t (t == "" ? "" : "; ") $0 } /^commit/ { print t }' > "$T/txns"
like "$(cat "$T/txns")" \
	'^begin; insert public.items \{"title":"none","qty":"3"\}; ddl ddl_command_end public.items; insert public.items \{"title":"none","qty":"4","extra":"40"\}; commit$' \
	"the multi-statement string: insert, DDL, insert in one transaction, in that order"
c=$(ddl 'select(.query | test("ADD COLUMN extra"))')
is "$(printf '%s' "$c" | jq -r '.query')" \
	"INSERT INTO items (qty) VALUES (3); ALTER TABLE items ADD COLUMN extra int; INSERT INTO items (qty, extra) VALUES (4, 40)" \
	"its query is the whole string"
is "$(printf '%s' "$c" | jq -r '"\(.commands[0].before.columns | length) \(.commands[0].def.columns[-1].name)"')" "4 extra" \
	"and the definitions tell what this statement changed"
created=$(grep -n '^begin; ddl ddl_command_end public.items_id_seq; commit$' "$T/txns" | cut -d: -f1)
first=$(grep -n 'insert public.items ' "$T/txns" | head -n 1 | cut -d: -f1)
[ -n "$created" ] && [ -n "$first" ] && [ "$created" -lt "$first" ]
ok $? "CREATE TABLE's transaction comes before the first insert into the new table"
big=$(grep 'public.big' "$T/txns")
is "$(printf '%s' "$big" | tr ';' '\n' | grep -n 'ddl ddl_command_end public.big' | cut -d: -f1)" 5002 \
	"the streamed transaction: its DDL after exactly 5000 inserts"
is "$(printf '%s' "$big" | tr ';' '\n' | grep -c 'insert public.big .*"late"')" 5000 "and before the 5000 that use it"
is "$(ddl 'select(.query | test("ADD COLUMN late")) | .commands[0].def.columns[-1].name')" '"late"' \
	"with its definition"

# 6. the base of a store taken after the install carries no event trigger;
# --tables does not publish a new table: the agent warns
"$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$P" -U postgres --section=post-data --exclude-schema=logship postgres > "$T/dump.sql"
like "$(grep -c 'CREATE EVENT TRIGGER logship_' "$T/dump.sql")" '^2$' "pg_dump itself dumps logship's event triggers"
S2="$T/store2"
"$AGENT" --source "$SRC" --store "$S2" --init --ddl --slot second --publication second \
	--tables public.items --flush-interval 0.2 > "$T/agent2.log" 2>&1 &
A=$!; track_pid $A
wait_streaming "$T/agent2.log" 1; ok $? "an agent on a second store streams"
psql_at "$P" -c "CREATE TABLE lonely (id int primary key)" -c "INSERT INTO lonely VALUES (1)" >/dev/null
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $A; wait $A; ok $? "it stops cleanly on SIGTERM"
"$AGENT" --source "$SRC" --store "$S2" --slot second --publication second --tables public.items \
	--endpos "$END" >> "$T/agent2.log" 2>&1
ok $? "and stores up to $END"
"$BLOBCAT" "$S2/$GEN/base/post-data" > "$T/post2.sql"; ok $? "its post-data section reads"
is "$(grep -v '^--' "$T/post2.sql" | grep -c 'EVENT TRIGGER')" 0 "and holds no event trigger"
like "$(cat "$T/post2.sql")" "CREATE PUBLICATION" "(but the rest of post-data)"
"$BLOBCAT" "$S2/$GEN/base/pre-data" > "$T/pre2.sql"
is "$(grep -c 'logship' "$T/pre2.sql")" 0 "nor does pre-data mention logship"
is "$("$BLOBCAT" "$S2/$GEN/base/manifest" | jq -c .ddl)" true "its manifest records the capture"
like "$("$RESTORE" ls --store "$S2")" "base: consistent at .*; DDL captured" "ls says so"
like "$(grep 'warn' "$T/agent2.log")" \
	"table public.lonely was created on the source but publication second does not publish it: its rows will not be streamed; add it \(ALTER PUBLICATION second ADD TABLE public.lonely\) or use a FOR ALL TABLES publication" \
	"a CREATE TABLE that --tables does not publish: the agent warns, naming the table"
is "$(grep -c 'does not publish' "$T/agent.log")" 0 "under FOR ALL TABLES it does not"
is "$("$RESTORE" cat --store "$S2" | jq -c 'select(.type == "message" and .prefix == "logship.ddl") | .content.commands[0].identity')" \
	'"public.lonely"' "the DDL is in the second store too"

pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
psql_at "$dst_PORT" -c "CREATE ROLE app_user" >/dev/null	# roles are not carried
"$RESTORE" --store "$S2" --target "host=127.0.0.1 port=$dst_PORT user=postgres dbname=postgres" \
	--state-dir "$T/st2" > "$T/restore2.log" 2>&1
ok $? "a restore of that store passes over its DDL messages" || tail -n 3 "$T/restore2.log" | sed 's/^/# /'
is "$(psql_at "$dst_PORT" -c "select count(*) from items")" "$(psql_at "$P" -c "select count(*) from items")" \
	"and restores its table"

# 7. --ddl-uninstall
out=$("$AGENT" --source "$SRC" --ddl-uninstall 2>&1); rc=$?
is "$rc" 0 "--ddl-uninstall exits 0"
like "$out" "DDL capture removed" "saying what it did"
is "$(evtriggers)" 0 "no event trigger is left"
is "$(functions)" 0 "no function"
is "$(psql_at "$P" -c "select to_regclass('logship.ddl_shadow') is null")" t "no shadow table"
"$AGENT" --source "$SRC" --ddl-uninstall >/dev/null 2>&1
is "$?" 0 "a second --ddl-uninstall is harmless"
psql_at "$P" -c "CREATE TABLE after_uninstall (id int primary key)" >/dev/null
END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
"$AGENT" --source "$SRC" --store "$S" --endpos "$END" >> "$T/agent.log" 2>&1
ok $? "an agent without --ddl stores up to $END"
is "$("$RESTORE" cat --store "$S" | grep -c after_uninstall)" 0 "DDL after the uninstall is not captured"
"$AGENT" --source "$SRC" --store "$T/store3" --init --slot third --endpos "$END" > "$T/agent3.log" 2>&1
ok $? "an agent without --ddl takes a base on a third store"
is "$("$BLOBCAT" "$T/store3/$GEN/base/manifest" | jq -c .ddl)" false "a base taken without capture records ddl false"

done_testing
