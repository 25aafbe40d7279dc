#!/bin/sh
# DDL replay under a model-driven random workload (issue 11): ddlgen.py
# keeps a model of the schema it made, so every one of its statements is
# valid and takes effect (unlike ddl-random.sh's schema-blind steps, many
# of which fail on the source): partitioned tables and their partitions,
# generated columns, foreign keys between the tables it made, retypes with
# USING and DROP DEFAULT in one ALTER TABLE, NOT NULL after an UPDATE in
# one query string, DROP ... CASCADE, TRUNCATE ... CASCADE, renames.  A
# --follow standby of a logship-agent --ddl source must equal it
# (fingerprint: pg_dump -s and every table's rows) after each burst; and
# after the agent is killed (-9) while a big DDL transaction streams to it.
# LOGSHIP_DDL_SEED picks the sequence (default 3), LOGSHIP_DDL_BURSTS and
# LOGSHIP_DDL_STEPS its size (default 10 bursts of 20 steps).
. "$(dirname "$0")/lib.sh"
SEED=${LOGSHIP_DDL_SEED:-3}
BURSTS=${LOGSHIP_DDL_BURSTS:-10}
STEPS=${LOGSHIP_DDL_STEPS:-20}
diag "seed $SEED, $BURSTS bursts of $STEPS steps"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
S="$T/store"

psql_at "$P" -c "CREATE TABLE burst (n int PRIMARY KEY)" \
	-c "ALTER SYSTEM SET logical_decoding_work_mem = '64kB'" -c "SELECT pg_reload_conf()" >/dev/null
agent() {
	"$AGENT" --source "$SRC" --store "$S" --ddl --flush-interval 0.2 "$@" >> "$T/agent.log" 2>&1 &
	A=$!; track_pid $A
}
: > "$T/agent.log"
agent --init
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "streaming generation" "$T/agent.log"; ok $? "the agent with --ddl streams"
psql_at "$Q" -c "create database standby" >/dev/null
"$RESTORE" --store "$S" --target "host=127.0.0.1 port=$Q user=postgres dbname=standby" \
	--state-dir "$T/st" --follow > "$T/follow.log" 2>&1 &
F=$!; track_pid $F

python3 "$top_srcdir/tests/integration/ddlgen.py" "$SEED" $((BURSTS * STEPS)) > "$T/steps.sql"
is "$(wc -l < "$T/steps.sql")" $((BURSTS * STEPS)) "the generator wrote $((BURSTS * STEPS)) steps"
failed=0; b=1; n=0
while [ $b -le "$BURSTS" ]; do
	sed -n "$(( (b - 1) * STEPS + 1 )),$(( b * STEPS ))p" "$T/steps.sql" > "$T/burst$b.sql"
	while IFS= read -r line; do	# one query string a step
		n=$((n + 1))
		psql_at "$P" -v ON_ERROR_STOP=1 -c "$line" >/dev/null 2>"$T/step.err" ||
			{ failed=$((failed + 1)); echo "# step $n failed on the source: $(head -n 1 "$T/step.err")"; }
	done < "$T/burst$b.sql"
	psql_at "$P" -c "INSERT INTO burst VALUES ($b)" >/dev/null
	wait_row "$Q" standby "select count(*) from burst where n = $b" $F
	fingerprint "$P" postgres > "$T/fp.src"
	fingerprint "$Q" standby > "$T/fp.dst"
	cmp -s "$T/fp.src" "$T/fp.dst"; ok $? "burst $b (steps to $n): the standby equals the source"
	if ! cmp -s "$T/fp.src" "$T/fp.dst"; then
		diff "$T/fp.src" "$T/fp.dst" | head -n 15 | sed 's/^/# /'
		tail -n 3 "$T/follow.log" | sed 's/^/# /'
		break
	fi
	b=$((b + 1))
done
is "$failed" 0 "every generated step took effect on the source"

# kill -9 of the agent in the middle of a big DDL transaction (streamed to
# it in chunks), then a new agent: the transaction is stored once, whole
psql_at "$P" -v ON_ERROR_STOP=1 > "$T/big.out" 2>&1 <<'SQL' &
BEGIN;
CREATE TABLE big (id int PRIMARY KEY, pad text);
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
ALTER TABLE big ADD COLUMN extra int DEFAULT 7;
ALTER TABLE big RENAME COLUMN pad TO filler;
SELECT pg_sleep(2);
INSERT INTO big (id, filler) SELECT g, 'late' FROM generate_series(20001, 40000) g;
INSERT INTO burst VALUES (1000);
COMMIT;
SQL
W=$!
i=0; until [ "$(psql_at "$P" -c "select coalesce(sum(stream_txns), 0) from pg_stat_replication_slots")" -gt 0 ] ||
	[ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -9 $A; wait $A 2>/dev/null
ok "$([ $i -le 100 ]; echo $?)" "the agent was killed while the DDL transaction streamed to it"
wait $W; st=$?; ok $st "the DDL transaction committed on the source"; [ $st -eq 0 ] || { echo "# status $st"; tail -n 3 "$T/big.out" | sed "s/^/# /"; }
agent
wait_row "$Q" standby "select count(*) from burst where n = 1000" $F
fingerprint "$P" postgres > "$T/fp.src"
fingerprint "$Q" standby > "$T/fp.dst"
cmp -s "$T/fp.src" "$T/fp.dst"; ok $? "after a new agent the standby equals the source (DDL and rows once)"
cmp -s "$T/fp.src" "$T/fp.dst" || diff "$T/fp.src" "$T/fp.dst" | head -n 10 | sed 's/^/# /'

for k in "PARTITION OF" "FOREIGN KEY" "TYPE .* USING" "SET NOT NULL" "RENAME TO" "DROP TABLE"; do
	diag "steps with $k: $(grep -c "$k" "$T/steps.sql")"
done
if [ "$SEED" = 3 ] && [ $((BURSTS * STEPS)) -ge 200 ]; then	# the default sequence covers every kind
	like "$(cat "$T/steps.sql")" "PARTITION OF" "the steps include partitioned tables"
	like "$(cat "$T/steps.sql")" "FOREIGN KEY" "and foreign keys"
	like "$(cat "$T/steps.sql")" "TYPE .* USING" "and retypes with USING"
fi
kill -TERM $F; wait $F; ok $? "the standby stops on SIGTERM with 0"
kill -TERM $A; wait $A
done_testing
