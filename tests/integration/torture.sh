#!/bin/sh
# The crash matrix (issue 14): a live mixed workload -- inserts, updates,
# deletes, truncates, large streamed and aborted transactions, savepoints,
# two-phase commits, DDL with --ddl -- while logship-agent and --follow
# restores (--id-mode preserve and remap, with and without a filter) are
# killed with SIGKILL at random moments, killed at the named crash points
# (LOGSHIP_CRASHPOINT, src/common/crashpoint.h), and the source and target
# PostgreSQL are restarted with -m fast and -m immediate under them.  At
# the end every target equals the source (table by table; the whole
# fingerprint with the schema for preserve without a filter) and every
# source transaction is applied exactly once: each one inserts its own
# number into the key-less table hist, which the target must hold once.
#
# Sized by the environment (make check: the defaults; make check-torture
# sets the long form):
#   TORTURE_KILLS     kills per run (default 10)
#   TORTURE_DDL       one run per word: 1 with --ddl, 0 without (default 1)
#   TORTURE_RESTORES  IDMODE:FILTER per --follow restore (default
#                     "preserve:none remap:filter")
#   TORTURE_FAULTS    1: source and target restarts among the events (default 1)
#   TORTURE_DDL_CONCURRENT  1: both writers run DDL, on the same table at
#                     times (default 0: one writer; make check-torture: 1)
#   TORTURE_SUMMARY   a file to append one summary line per run to
. "$(dirname "$0")/lib.sh"

KILLS=${TORTURE_KILLS:-10}
DDLS=${TORTURE_DDL:-1}
RESTORES=${TORTURE_RESTORES:-preserve:none remap:filter}
FAULTS=${TORTURE_FAULTS:-1}
DDL_BOTH=${TORTURE_DDL_CONCURRENT:-0}
SUMMARY=${TORTURE_SUMMARY:-/dev/null}

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
psql_at "$P" -c "ALTER SYSTEM SET logical_decoding_work_mem = '64kB'" \
	-c "ALTER SYSTEM SET max_prepared_transactions = 8" >/dev/null
pg_as "$PG_BINDIR/pg_ctl" -D "$src_DIR/data" -l "$src_DIR/log" -w restart >/dev/null ||
	{ echo "Bail out! cannot restart the source"; exit 1; }

rnd() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 )); }	# 0..N-1
nap() { sleep "$(( $(rnd 20) / 10 )).$(rnd 10)"; }		# 0.0..1.9 s

# ---- the workload -----------------------------------------------------------

SCHEMA="
CREATE TABLE acct (id int PRIMARY KEY, grp int NOT NULL, bal bigint NOT NULL, note text);
CREATE TABLE items (id serial PRIMARY KEY, acct int NOT NULL, v text);
CREATE TABLE big (id bigint PRIMARY KEY, pad text);
CREATE TABLE scratch (id int PRIMARY KEY, v text);
CREATE TABLE noise (id int PRIMARY KEY);
CREATE TABLE hist (txn bigint NOT NULL, kind text NOT NULL);
ALTER TABLE hist REPLICA IDENTITY FULL;
CREATE TABLE dd (id int PRIMARY KEY, v text);
INSERT INTO acct SELECT g, g % 5, 0, 'base' FROM generate_series(1, 200) g;
INSERT INTO items (acct, v) SELECT g, 'base' FROM generate_series(1, 200) g;
INSERT INTO hist VALUES (0, 'base');
"

# txn_sql N DDL: one source transaction numbered N (a random kind); its
# hist row is the proof it was applied once.  Aborted kinds insert theirs
# and roll it back.
txn_sql() {
	n=$1; h="INSERT INTO hist VALUES ($n, "
	r=$(rnd 100)
	if [ "$r" -lt 25 ]; then
		echo "BEGIN; ${h}'insert');
INSERT INTO acct SELECT $n * 10 + g, g % 5, $n, 'i' FROM generate_series(0, 9) g;
INSERT INTO items (acct, v) SELECT $n * 10 + g, 'i$n' FROM generate_series(0, 4) g;
INSERT INTO noise VALUES ($n); COMMIT;"
	elif [ "$r" -lt 45 ]; then
		m=$(rnd 97)
		echo "BEGIN; ${h}'update');
UPDATE acct SET bal = bal + 1, grp = (grp + 1) % 5, note = 'u$n' WHERE id % 97 = $m;
UPDATE items SET v = 'u$n' WHERE acct % 97 = $m; COMMIT;"
	elif [ "$r" -lt 55 ]; then
		m=$(rnd 97)
		echo "BEGIN; ${h}'delete');
DELETE FROM items WHERE acct % 193 = $m; DELETE FROM acct WHERE id % 193 = $m;
DELETE FROM big WHERE id % 7 = $((m % 7)); COMMIT;"
	elif [ "$r" -lt 60 ]; then
		echo "BEGIN; ${h}'truncate'); TRUNCATE scratch;
INSERT INTO scratch SELECT g, 't$n' FROM generate_series(1, 50) g; COMMIT;"
	elif [ "$r" -lt 65 ]; then
		echo "BEGIN; ${h}'large');
INSERT INTO big SELECT $n * 100000 + g, repeat('x', 40) FROM generate_series(1, 20000) g; COMMIT;"
	elif [ "$r" -lt 70 ]; then
		echo "BEGIN; ${h}'aborted');
INSERT INTO big SELECT $n * 100000 + g, 'aborted' FROM generate_series(1, 20000) g;
UPDATE acct SET note = 'aborted'; ROLLBACK;"
	elif [ "$r" -lt 80 ]; then
		echo "BEGIN; ${h}'savepoint'); SAVEPOINT a;
INSERT INTO acct VALUES ($n * 10, 0, -1, 'rolled back'); ROLLBACK TO a;
INSERT INTO acct VALUES ($n * 10 + 1, 1, $n, 'kept'); SAVEPOINT b;
UPDATE acct SET note = 's$n' WHERE id = $n * 10 + 1; RELEASE b; COMMIT;"
	elif [ "$r" -lt 90 ]; then
		end="COMMIT PREPARED 'w$n';"
		[ "$(rnd 5)" -eq 0 ] && end="ROLLBACK PREPARED 'w$n';"
		echo "BEGIN; ${h}'2pc');
INSERT INTO acct VALUES ($n * 10 + 2, 2, $n, '2pc');
UPDATE items SET v = '2pc$n' WHERE id % 50 = $((n % 50)); PREPARE TRANSACTION 'w$n'; $end"
	elif [ "$2" = 1 ] && [ "$DDL_BOTH" = 0 ] && [ $((n % 2)) = 1 ]; then
		echo "BEGIN; ${h}'small'); UPDATE acct SET bal = bal - 1 WHERE id = $((n % 200 + 1)); COMMIT;"
	elif [ "$2" = 1 ] && [ "$r" -lt 95 ]; then
		echo "BEGIN; ${h}'ddl');
CREATE TABLE dd_$n (id int PRIMARY KEY, v text); INSERT INTO dd_$n VALUES (1, 'd$n'); COMMIT;"
	elif [ "$2" = 1 ]; then
		echo "BEGIN; ${h}'ddl');
ALTER TABLE dd ADD COLUMN c$n int DEFAULT $n; INSERT INTO dd (id, v) VALUES ($n, 'a'); COMMIT;"
	else
		echo "BEGIN; ${h}'small'); UPDATE acct SET bal = bal - 1 WHERE id = $((n % 200 + 1)); COMMIT;"
	fi
}

# worker W DB DDL: transactions numbered W, W+2, ... until $T/stop
worker() {
	n=$((1000 + $1))
	while [ ! -e "$T/stop" ]; do
		txn_sql $n "$3" | psql_at_db "$P" "$2" >/dev/null 2>&1
		n=$((n + 2))
	done
}

# ---- processes --------------------------------------------------------------

# agent_start [ENV=VALUE]: the agent in the background, APID its pid
agent_start() {
	( exec env "$@" "$AGENT" --source "$SRC" --store "$S" --init --slot "$SLOT" \
	    --publication "$SLOT" $AGENT_DDL --flush-interval 0.2 --jobs 2 \
	    >> "$T/agent$RUN.log" 2>&1 ) &
	APID=$!; track_pid $APID
}
# restore_start I [ENV=VALUE]: restore I (--follow) in the background
restore_start() {
	_i=$1; shift
	eval "_cfg=\$CFG_$_i"
	_mode=${_cfg%%:*}; _filt=""
	[ "${_cfg#*:}" = filter ] && _filt="--filter $T/filter"
	( exec env "$@" "$RESTORE" --store "$S" --target "$(dst "$(dbname "$_i")")" \
	    --state-dir "$T/state$RUN.$_i" --follow --batch-txns 3 --id-mode "$_mode" \
	    $_filt >> "$T/restore$RUN.$_i.log" 2>&1 ) &
	eval "RPID_$_i=$!"; track_pid $!
}
dbname() { echo "r${RUN}_$1"; }
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
alive() { kill -0 "$1" 2>/dev/null; }

# reap: restart whatever exited on its own (a lost connection: the
# source or target restarted), counting it and keeping its last error.
reap() {
	if ! alive "$APID"; then
		wait "$APID"; _rc=$?
		if [ $_rc -ne 0 ]; then
			EXITS=$((EXITS + 1))
			echo "agent exit $_rc: $(grep -E ' (error|fatal) ' "$T/agent$RUN.log" | tail -n 1 | cut -c 29-)" >> "$T/exits"
		fi
		agent_start
	fi
	for _i in $IDS; do
		eval "_p=\$RPID_$_i"
		alive "$_p" && continue
		wait "$_p"; _rc=$?
		if [ $_rc -ne 0 ]; then
			EXITS=$((EXITS + 1))
			echo "restore $_i exit $_rc: $(grep -E ' (error|fatal) ' "$T/restore$RUN.$_i.log" | tail -n 1 | cut -c 29-)" >> "$T/exits"
		fi
		restore_start "$_i"
	done
}

# crash_at WHO POINT: stop WHO (agent or a restore index) cleanly, rerun it
# with LOGSHIP_CRASHPOINT=POINT and wait up to 60 s for it to die there.
crash_at() {
	if [ "$1" = agent ]; then
		kill -TERM "$APID"; wait "$APID"
		agent_start "LOGSHIP_CRASHPOINT=$2"; _p=$APID
	else
		eval "_p=\$RPID_$1"; kill -TERM "$_p"; wait "$_p"
		restore_start "$1" "LOGSHIP_CRASHPOINT=$2"; eval "_p=\$RPID_$1"
	fi
	_w=0; while alive "$_p" && [ $_w -lt 600 ]; do sleep 0.1; _w=$((_w + 1)); done
	if alive "$_p"; then
		kill -9 "$_p"; wait "$_p"
		diag "crash point $2 ($1) not reached in 60 s"; MISSED=$((MISSED + 1))
	else
		wait "$_p"; _rc=$?
		if [ $_rc -eq 137 ]; then CRASHES=$((CRASHES + 1)); else
			diag "crash point $2 ($1): exit $_rc instead"; MISSED=$((MISSED + 1)); fi
	fi
	if [ "$1" = agent ]; then agent_start; else restore_start "$1"; fi
	echo "$2" >> "$T/points"
}

# pg_bounce CLUSTER MODE: restart a cluster under the programs
pg_bounce() {
	eval "_d=\$${1}_DIR"
	pg_as "$PG_BINDIR/pg_ctl" -D "$_d/data" -l "$_d/log" -m "$2" -w restart >/dev/null 2>&1 ||
		diag "pg_ctl restart -m $2 of $1 failed"
	if [ "$1" = src ]; then	# a 2PC its worker lost with the connection
		sleep 0.5
		psql_at_db "$P" "$DB" -c "select gid from pg_prepared_xacts where database = current_database()" 2>/dev/null |
		while read -r g; do psql_at_db "$P" "$DB" -c "COMMIT PREPARED '$g'" >/dev/null 2>&1; done
	fi
	BOUNCES=$((BOUNCES + 1))
}

# ---- checks -----------------------------------------------------------------

# sums PORT DB IDX SIDE: "table rows md5" per source table, as restore IDX
# sees it: a filtered restore drops noise and acct rows of grp 3; a
# remapping one gives items new ids, so those are left out of its rows.
sums() {
	eval "_cfg=\$CFG_$3"
	psql_at_db "$P" "$DB" -c "select tablename from pg_tables where schemaname = 'public' order by 1" |
	while read -r t; do
		_w=""; _x="to_jsonb(x)"
		if [ "${_cfg#*:}" = filter ]; then
			[ "$t" = noise ] && continue
			[ "$t" = acct ] && [ "$4" = src ] && _w="where grp <> 3"
		fi
		[ "${_cfg%%:*}" = remap ] && [ "$t" = items ] && _x="to_jsonb(x) - 'id'"
		printf '%s %s\n' "$t" "$(psql_at_db "$1" "$2" -c "select count(*) || ' ' ||
			coalesce(md5(string_agg(($_x)::text, E'\n' order by ($_x)::text)), '-') from $t x $_w" 2>&1)"
	done
}

one_run() {	# one_run DDL
	DDL=$1; RUN=$((RUN + 1)); DB=w$RUN; SLOT=torture$RUN; S="$T/store$RUN"
	AGENT_DDL=""; [ "$DDL" = 1 ] && AGENT_DDL=--ddl
	SRC="host=127.0.0.1 port=$P user=postgres dbname=$DB"
	EXITS=0; CRASHES=0; MISSED=0; RANDOM_KILLS=0; BOUNCES=0
	: > "$T/exits"; : > "$T/points"; rm -f "$T/stop"
	psql_at "$P" -c "CREATE DATABASE $DB" >/dev/null
	psql_at_db "$P" "$DB" -c "$SCHEMA" >/dev/null
	IDS=""; k=0
	for c in $RESTORES; do
		k=$((k + 1)); IDS="$IDS $k"; eval "CFG_$k=$c"
		psql_at "$Q" -c "CREATE DATABASE $(dbname $k)" >/dev/null
	done
	t0=$(date +%s)

	# the base snapshot, killed after its second chunk, then redone
	agent_start LOGSHIP_CRASHPOINT=agent-base-chunk:2; wait "$APID"; rc=$?
	is "$rc" 137 "run $RUN: the agent died at crash point agent-base-chunk:2 (mid-base)"
	echo agent-base-chunk >> "$T/points"
	agent_start
	i=0; until grep -q "streaming generation" "$T/agent$RUN.log" || [ $i -gt 600 ]; do sleep 0.1; i=$((i+1)); done
	WPIDS=""
	for w in 0 1; do worker $w "$DB" "$DDL" & WPIDS="$WPIDS $!"; track_pid $!; done
	for i in $IDS; do restore_start "$i"; done

	# the named crash points first, then random kills and restarts
	events="cp-upload cp-target"
	for i in $IDS; do eval "_c=\$CFG_$i"; [ "${_c%%:*}" = remap ] && events="$events cp-map"; done
	[ "$FAULTS" = 1 ] && events="$events src-fast src-immediate dst-fast dst-immediate"
	kills=0
	while [ $kills -lt "$KILLS" ]; do
		nap; reap
		set -- $events
		if [ $# -gt 0 ]; then ev=$1; shift; events="$*"
		else case $(rnd 2) in 0) ev=kill-agent ;; *) ev=kill-restore ;; esac; fi
		v=$(echo $IDS | tr ' ' '\n' | sed -n "$(( $(rnd $(echo $IDS | wc -w)) + 1 ))p")
		case $ev in
		kill-agent) kill -9 "$APID"; wait "$APID"; agent_start
			RANDOM_KILLS=$((RANDOM_KILLS + 1)) ;;
		kill-restore) eval "kill -9 \$RPID_$v; wait \$RPID_$v"; restore_start "$v"
			RANDOM_KILLS=$((RANDOM_KILLS + 1)) ;;
		cp-upload) crash_at agent "agent-after-upload:$(( $(rnd 3) + 1 ))" ;;
		cp-target) crash_at "$v" "restore-after-target-commit:$(( $(rnd 4) + 1 ))" ;;
		cp-map)	for i in $IDS; do eval "_c=\$CFG_$i"; [ "${_c%%:*}" = remap ] && v=$i; done
			crash_at "$v" "restore-after-map-commit:$(( $(rnd 3) + 1 ))" ;;
		src-*) pg_bounce src "${ev#src-}" ;;
		dst-*) pg_bounce dst "${ev#dst-}" ;;
		esac
		case $ev in kill-*|cp-*) kills=$((kills + 1)) ;; esac
	done
	reap
	touch "$T/stop"; wait $WPIDS
	END=$(psql_at "$P" -c "select pg_current_wal_lsn()")
	kill -TERM "$APID"; wait "$APID"
	"$AGENT" --source "$SRC" --store "$S" --slot "$SLOT" --publication "$SLOT" $AGENT_DDL \
	    --endpos "$END" >> "$T/agent$RUN.log" 2>&1
	ok $? "run $RUN: after the kills the agent stores everything up to $END"
	for i in $IDS; do eval "kill -TERM \$RPID_$i; wait \$RPID_$i"; done
	diag "run $RUN (--ddl=$DDL): $RANDOM_KILLS random kills, $CRASHES crash points hit ($MISSED missed: $(sort "$T/points" | cut -d: -f1 | uniq -c | tr -s ' ' | tr '\n' ',')), $BOUNCES PostgreSQL restarts, $EXITS other exits"
	sed 's/^/#   /' "$T/exits" | sort | uniq -c | head -n 20
	ntx=$(psql_at_db "$P" "$DB" -c "select count(*) from hist")
	diag "run $RUN: $ntx source transactions committed ($(psql_at_db "$P" "$DB" -c "select string_agg(kind || '=' || n, ' ') from (select kind, count(*) n from hist group by 1 order by 1) s"))"
	[ "$MISSED" -eq 0 ]; ok $? "run $RUN: every crash point was reached ($CRASHES)"

	fails=0
	for i in $IDS; do
		eval "_c=\$CFG_$i"; _mode=${_c%%:*}; _filt=""
		[ "${_c#*:}" = filter ] && _filt="--filter $T/filter"
		"$RESTORE" --store "$S" --target "$(dst "$(dbname "$i")")" --state-dir "$T/state$RUN.$i" \
		    --id-mode "$_mode" $_filt >> "$T/restore$RUN.$i.log" 2>&1
		rc=$?; is "$rc" 0 "run $RUN, restore $i ($_c): the final catch-up exits 0"
		[ $rc -eq 0 ] || { tail -n 5 "$T/restore$RUN.$i.log" | sed 's/^/# /'; fails=$((fails + 1)); }
		sums "$P" "$DB" "$i" src > "$T/sums.src"; sums "$Q" "$(dbname "$i")" "$i" dst > "$T/sums.dst"
		check "run $RUN, restore $i ($_c): every table equals the source's" diff "$T/sums.src" "$T/sums.dst" || fails=$((fails + 1))
		is "$(psql_at_db "$Q" "$(dbname "$i")" -c "select count(*) - count(distinct txn) from hist")" 0 \
			"run $RUN, restore $i ($_c): no transaction applied twice"
		is "$(psql_at_db "$Q" "$(dbname "$i")" -c "select count(distinct txn) from hist")" "$ntx" \
			"run $RUN, restore $i ($_c): all $ntx source transactions applied"
		if [ "$_c" = preserve:none ]; then
			fingerprint "$P" "$DB" > "$T/fp.src"; fingerprint "$Q" "$(dbname "$i")" > "$T/fp.dst"
			check "run $RUN, restore $i ($_c): the fingerprint (rows and schema) equals the source's" \
				diff "$T/fp.src" "$T/fp.dst"
		fi
	done

	# mirror the store, killed after its third object, then resumed
	LOGSHIP_CRASHPOINT=mirror-after-copy:3 "$RESTORE" mirror --from "$S" --to "$T/mirror$RUN" >/dev/null 2>&1
	is "$?" 137 "run $RUN: mirror died at crash point mirror-after-copy:3"
	"$RESTORE" mirror --from "$S" --to "$T/mirror$RUN" > "$T/mirror$RUN.log" 2>&1
	is "$?" 0 "run $RUN: the mirror resumes"
	check "run $RUN: the mirror verifies" "$RESTORE" verify --store "$T/mirror$RUN"
	secs=$(( $(date +%s) - t0 ))
	echo "torture run $RUN: ddl=$DDL restores=[$RESTORES] random_kills=$RANDOM_KILLS crashpoints=$CRASHES pg_restarts=$BOUNCES other_exits=$EXITS txns=$ntx seconds=$secs failures=$fails" >> "$SUMMARY"
	diag "run $RUN took $secs s"
	psql_at "$P" -c "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null 2>&1
	[ -n "${TORTURE_LOGDIR:-}" ] && mkdir -p "$TORTURE_LOGDIR" && cp "$T"/*.log "$TORTURE_LOGDIR/" &&
		cp -r "$S" "$TORTURE_LOGDIR/"
}

cat > "$T/filter" <<EOF
exclude public.noise
table public.acct
    where grp <> 3
EOF
RUN=0
for d in $DDLS; do one_run "$d"; done
done_testing
