#!/bin/sh
# Elision filters (--filter): tables by glob, a row predicate with rows
# moving in and out by UPDATE, masked columns (drop, null, const, hash),
# the same filters on the base snapshot, a fully filtered transaction still
# moving the marker, elided parents under each --on-missing-ref policy with
# ID remapping, and bad filter files refused with FILE:LINE:COL, exit 2.
. "$(dirname "$0")/lib.sh"

pg_start src || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
pg_start dst || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
P=$src_PORT; Q=$dst_PORT
SRC="host=127.0.0.1 port=$P user=postgres dbname=postgres"
dst() { echo "host=127.0.0.1 port=$Q user=postgres dbname=$1"; }
S="$T/store"
for db in f1 f2 m_error m_null m_skip bad; do psql_at "$Q" -c "create database $db" >/dev/null; done
psql_at "$P" >/dev/null <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, country text, email text,
    phone text, notes text, ssn text, active bool);
CREATE TABLE audit_log (id serial PRIMARY KEY, msg text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, amount numeric);
CREATE TABLE noise (id int PRIMARY KEY);
INSERT INTO customers (country, email, phone, notes, ssn, active)
    SELECT CASE WHEN g % 3 = 0 THEN 'DE' WHEN g % 3 = 1 THEN 'FR' ELSE 'US' END,
           'c' || g || '@example.com', '555-' || g, 'note ' || g, '123-45-' || g, g % 2 = 0
    FROM generate_series(1, 30) g;
INSERT INTO orders (customer_id, amount) SELECT g, g * 1.5 FROM generate_series(1, 30) g;
INSERT INTO audit_log (msg) VALUES ('base');
SQL
head -c 32 /dev/urandom > "$T/pii.key"; chmod 600 "$T/pii.key"
cat > "$T/filter" <<EOF2
# keep customers in Europe, without PII
exclude public.audit_*
exclude public.noise
hash-key-file $T/pii.key
table public.customers
    where country in ('DE', 'FR')
    column email hash
    column phone null
    column notes drop
    column ssn const 'XXX-XX-XXXX'
EOF2

"$AGENT" --source "$SRC" --store "$S" --init --flush-interval 0.2 > "$T/agent.log" 2>&1 &
APID=$!; track_pid $APID
i=0; until grep -q "streaming generation" "$T/agent.log" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
psql_at "$P" >/dev/null <<'SQL'
INSERT INTO customers (country, email, phone, notes, ssn, active) VALUES ('DE', 'new@example.com', '1', 'n', 's', true);
UPDATE customers SET country = 'US' WHERE id = 3;           -- DE -> US: moves out
UPDATE customers SET country = 'FR' WHERE id = 2;           -- US -> FR: moves in
UPDATE customers SET email = 'changed@example.com' WHERE id = 6;
DELETE FROM orders WHERE customer_id = 9;
DELETE FROM customers WHERE id = 9;                          -- DE row deleted
INSERT INTO audit_log (msg) VALUES ('only noise');           -- a fully filtered transaction
INSERT INTO noise VALUES (1);
SQL
last=$(psql_at "$P" -c "select pg_current_wal_lsn()")
kill -TERM $APID; wait $APID
"$AGENT" --source "$SRC" --store "$S" --init --endpos "$last" >> "$T/agent.log" 2>&1
ok $? "the store holds the workload"

"$RESTORE" --store "$S" --target "$(dst f1)" --state-dir "$T/s1" --filter "$T/filter" > "$T/r1.log" 2>&1
is "$?" 0 "filtered restore exits 0" || tail -n 5 "$T/r1.log" | sed 's/^/# /'
q() { psql_at_db "$Q" "$@"; }
is "$(q f1 -c "select count(*) from pg_tables where tablename in ('audit_log', 'noise') and schemaname = 'public'")" "2" "excluded tables exist (schema) ..."
is "$(q f1 -c "select (select count(*) from audit_log) + (select count(*) from noise)")" "0" "... but hold no rows"
is "$(q f1 -c "select count(*) from customers")" \
   "$(psql_at "$P" -c "select count(*) from customers where country in ('DE', 'FR')")" "only rows matching the predicate"
is "$(q f1 -c "select count(*) from customers where id = 3")" "0" "a row that moved out by UPDATE is deleted"
is "$(q f1 -c "select country from customers where id = 2")" "FR" "a row that moved in by UPDATE is inserted"
is "$(q f1 -c "select count(*) from customers where id = 9")" "0" "a DELETE of a kept row applies"
want=$(printf '%s' 'changed@example.com' | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(od -An -tx1 "$T/pii.key" | tr -d ' \n') | sed 's/^.*= //')
is "$(q f1 -c "select email from customers where id = 6")" "$want" "email is the keyed HMAC-SHA256 of the source value"
is "$(q f1 -c "select count(*) from customers where phone is not null or ssn <> 'XXX-XX-XXXX' or notes is not null")" "0" "phone NULL, ssn constant, notes dropped (column default)"
is "$(q f1 -c "select count(*) from customers where email like '%@example.com'")" "0" "no clear-text email reached the target (base rows included)"
last_end=$("$RESTORE" cat --store "$S" | jq -r 'select(.type=="commit") | .end_lsn' | tail -n 1)
is "$(q f1 -c "select end_lsn from logship.applied")" "$last_end" "the marker advanced through the fully filtered last transaction"

# elided parents: orders of customers the filter leaves out, remapped keys
for pol in error null skip; do
	"$RESTORE" --store "$S" --target "$(dst m_$pol)" --state-dir "$T/sm_$pol" --filter "$T/filter" \
	    --id-mode remap --on-missing-ref $pol > "$T/m_$pol.log" 2>&1
	echo $? > "$T/m_$pol.rc"
done
is "$(cat "$T/m_error.rc")" "1" "--on-missing-ref error stops"
like "$(cat "$T/m_error.log")" "public.orders.customer_id = [0-9]+ refers to a public.customers row that is not in the ID map" "naming table, column, key"
is "$(cat "$T/m_null.rc")" "0" "--on-missing-ref null completes"
is "$(q m_null -c "select count(*) from orders where customer_id is null")" \
   "$(psql_at "$P" -c "select count(*) from orders o join customers c on c.id = o.customer_id where c.country not in ('DE','FR')")" "orders of elided customers have customer_id NULL"
is "$(cat "$T/m_skip.rc")" "0" "--on-missing-ref skip completes"
is "$(q m_skip -c "select count(*) from orders")" \
   "$(psql_at "$P" -c "select count(*) from orders o join customers c on c.id = o.customer_id where c.country in ('DE','FR')")" "orders of elided customers are skipped"

# bad filter files: line and column, exit 2, nothing applied
bad() {	# bad NAME TEXT PATTERN
	printf '%s\n' "$2" > "$T/bad.filter"
	out=$("$RESTORE" --store "$S" --target "$(dst bad)" --state-dir "$T/sbad" --filter "$T/bad.filter" 2>&1); rc=$?
	is "$rc" 2 "$1: exit 2"
	like "$out" "$3" "$1: $(printf '%s' "$out" | grep -o 'bad.filter:[0-9]*:[0-9]*' | head -n 1)"
}
bad "unknown table" "table public.nope" "bad.filter:1:7: .*nope"
bad "unknown column" "$(printf 'table public.customers\n  where colour = 1')" "bad.filter:2:9: .*colour"
bad "type error" "$(printf 'table public.orders\n  where amount > %s' "'lots'")" "bad.filter:2:[0-9]+: .*"
bad "syntax error" "$(printf 'table public.customers\n  where (country = %s' "'DE'")" "bad.filter:[23]:[0-9]+: .*"
is "$(q bad -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")" "0" "nothing was applied by the refused runs"

done_testing
