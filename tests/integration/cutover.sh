#!/bin/sh
# The cutover recipe of logship-restore(1) EXAMPLES, run verbatim: the lines
# between the cutover-recipe markers of the man page's source, with only
# the placeholders the page names (SOURCE, TARGET, CONF, AGENT, STANDBY)
# set to this test's.  The agent and the standby run as their units would
# (--config FILE); "systemctl stop" is a stand-in that sends SIGTERM to the
# unit's process and waits, as systemd does.  A workload writes until the
# recipe stops the writes.  At the end the target equals the source,
# sequences included, and the slot and the publication are gone.  Also:
# --drop-slot refuses a slot in use and a source that is not the store's.
. "$(dirname "$0")/lib.sh"

# the recipe, out of the page
sed -n '/^\.\\" cutover-recipe-begin/,/^\.\\" cutover-recipe-end/p' "$top_srcdir/man/logship-restore.1" |
	sed '1d;$d' | grep -v -e '^\.Bd' -e '^\.Ed' > "$T/recipe.orig"
[ -s "$T/recipe.orig" ]; ok $? "the man page holds the marked recipe"
grep -n -e '^\.' -e '\\' "$T/recipe.orig" > "$T/roff" ; [ ! -s "$T/roff" ]
ok $? "the recipe is plain shell (no roff requests or escapes in it)"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
DST="host=127.0.0.1 port=$Q user=postgres dbname=postgres"
CONF="$T/etc"; PIDS="$T/pids"; mkdir -p "$CONF" "$PIDS" "$T/bin"

sed -e "s|^SOURCE=.*|SOURCE='$SRC'|" -e "s|^TARGET=.*|TARGET='$DST'|" \
    -e "s|^CONF=.*|CONF='$CONF'|" -e "s|^AGENT=.*|AGENT=app|" \
    -e "s|^STANDBY=.*|STANDBY=app-standby|" "$T/recipe.orig" > "$T/recipe.sh"
diff "$T/recipe.orig" "$T/recipe.sh" | grep '^[<>]' | grep -v -E '^[<>] (SOURCE|TARGET|CONF|AGENT|STANDBY)=' > "$T/changed"
[ ! -s "$T/changed" ] && [ "$(diff "$T/recipe.orig" "$T/recipe.sh" | grep -c '^>')" -ge 1 ]
ok $? "only placeholder lines are set"

# systemctl stop UNIT, as systemd does it: SIGTERM to the main process, wait
cat > "$T/bin/systemctl" <<EOF
#!/bin/sh
[ "\$1" = stop ] || { echo "systemctl stand-in: only stop" >&2; exit 1; }
pid=\$(cat "$PIDS/\$2.pid") || exit 1
kill -TERM "\$pid" || exit 1
while ps -o stat= -p "\$pid" 2>/dev/null | grep -q '^[^Z]'; do sleep 0.1; done
EOF
chmod +x "$T/bin/systemctl"
ln -s "$AGENT" "$T/bin/logship-agent"
ln -s "$RESTORE" "$T/bin/logship-restore"

"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
psql_at "$P" >/dev/null <<'SQL'
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TABLE orders (id serial PRIMARY KEY, v int, at timestamptz DEFAULT now());
CREATE SEQUENCE tickets;
SQL
cat > "$T/orders.sql" <<'SQL'
INSERT INTO orders (v) VALUES ((random() * 1000)::int);
SELECT nextval('tickets');
SQL

cat > "$CONF/app.conf" <<EOF
source = $SRC
store = $T/store
init = true
flush-interval = 200ms
EOF
cat > "$CONF/app-standby.conf" <<EOF
store = $T/store
target = $DST
state-dir = $T/standby-state
EOF
"$AGENT" --config "$CONF/app.conf" > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID; echo $APID > "$PIDS/logship-agent@app.service.pid"
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
"$RESTORE" --follow --config "$CONF/app-standby.conf" > "$T/standby.log" 2>&1 &
RPID=$!; track_pid $RPID; echo $RPID > "$PIDS/logship-restore@app-standby.service.pid"

# the application writes until the recipe stops it
"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$P" -U postgres -n -c 2 -T 600 -R 100 \
    -b tpcb-like -f "$T/orders.sql" postgres > "$T/pgbench.log" 2>&1 &
WPID=$!; track_pid $WPID
wait_row "$Q" postgres "select (count(*) >= 50)::int from orders" $RPID
is "$(psql_at "$Q" -c "select (count(*) >= 50)::int from orders")" 1 "the standby follows the live workload"

# --drop-slot: refused while the agent uses the slot, and on another source
out=$("$AGENT" --config "$CONF/app.conf" --drop-slot 2>&1); rc=$?
is "$rc" 1 "--drop-slot while the agent runs: exit 1"
like "$out" "replication slot logship is in use by process [0-9]+ .*stop it first" "... saying who holds it and what to do"
out=$("$AGENT" --config "$CONF/app.conf" --source "$DST" --drop-slot 2>&1); rc=$?
is "$rc" 1 "--drop-slot on a source that is not the store's: exit 1"
like "$out" "refusing to drop a slot there" "... refused, naming both"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots where slot_name = 'logship'")" 1 "the slot is still there"
kill -0 $WPID 2>/dev/null; ok $? "the workload still writes when the recipe starts"

# a guard, not a measure: a recipe that hangs fails instead
PATH="$T/bin:$PG_BINDIR:$PATH" timeout 180 sh -e "$T/recipe.sh" > "$T/recipe.log" 2>&1
rc=$?
is "$rc" 0 "the recipe runs to its end, exit 0"
if [ "$rc" -ne 0 ]; then	# do not wait for what the recipe did not stop
	sed 's/^/# /' "$T/recipe.log" | tail -n 20
	kill -TERM $APID $RPID $WPID 2>/dev/null
fi
wait $WPID 2>/dev/null
wait $RPID; is "$?" 0 "the following standby stopped cleanly (exit 0)"
wait $APID; is "$?" 0 "the agent stopped cleanly (exit 0)"
like "$(cat "$T/recipe.log")" "the store holds every transaction up to --until-lsn" "the --until-lsn run ended at the final position"
like "$(cat "$T/recipe.log")" "replication slot logship dropped, publication logship dropped" "--drop-slot says what it dropped"

check "the target equals the source" same_data "$P" "$Q"
psql_at "$P" -c "select schemaname||'.'||sequencename||' '||coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.src"
psql_at "$Q" -c "select schemaname||'.'||sequencename||' '||coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.dst"
is "$(cat "$T/seq.dst")" "$(cat "$T/seq.src")" "sequences are exactly the source's"
is "$(psql_at "$P" -c "select count(*) from pg_replication_slots")" 0 "the slot is gone"
is "$(psql_at "$P" -c "select count(*) from pg_publication")" 0 "the publication is gone"
is "$(psql_at "$Q" -c "select count(*) from orders")" "$(psql_at "$P" -c "select count(*) from orders")" \
    "every order written before the stop is on the target"
"$RESTORE" verify --store "$T/store" > "$T/verify.log" 2>&1
is "$?" 0 "the retired store still verifies"

done_testing
