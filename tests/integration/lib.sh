# lib.sh: shared helpers for the integration tests (sourced).
#  - TAP output: plan, ok, is, like, diag, done_testing
#  - a private temp dir ($T) removed on exit, with everything started killed
#  - PostgreSQL clusters on free private ports, run as the postgres user
#    when the tests run as root.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
RESTORE="$top_builddir/restore/logship-restore"
AGENT="$top_builddir/agent/logship-agent"
MKSTORE="$top_builddir/tests/tools/mkstore"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

T=$(mktemp -d /tmp/logship-test.XXXXXX)
chmod 755 "$T"
_pids=""
_clusters=""
_n=0
_failed=0
_pseed=0

cleanup() {
	for p in $_pids; do kill -9 "$p" 2>/dev/null || true; done
	for d in $_clusters; do pg_as "$PG_BINDIR/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

ok() {	# ok COND-STATUS DESCRIPTION
	_n=$((_n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _failed=$((_failed + 1)); fi
}
check() {	# check DESCRIPTION -- command...
	_d=$1; shift
	if "$@" >"$T/check.out" 2>&1; then ok 0 "$_d"; else ok 1 "$_d"; sed 's/^/# /' "$T/check.out" | head -n 20; fi
}
is() {	# is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got: '$1'"; echo "#  want: '$2'"; fi
}
like() {	# like TEXT GREP-ERE DESCRIPTION
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; printf '%s\n' "$1" | head -n 10 | sed 's/^/#   got: /'; fi
}
diag() { echo "# $*"; }
done_testing() { echo "1..$_n"; [ "$_failed" -eq 0 ]; exit $?; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
track_pid() { _pids="$_pids $1"; }

# PostgreSQL ---------------------------------------------------------------
if [ -z "${PG_BINDIR:-}" ] || [ ! -x "$PG_BINDIR/initdb" ]; then
	PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
export PG_BINDIR

pg_as() {	# run a command as the cluster owner
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# free_port: a port nothing uses, below the kernel's ephemeral range
# (32768 and up on Linux), where an outgoing connection of any program may
# hold a port as its own end for as long as it lives (Swift once waited 30 s
# for one); any socket on it, not only a listening one, counts as in use.
free_port() {
	_p=$(( (($$ * 7 + $(od -An -N2 -tu2 /dev/urandom) + _pseed * 13) % 12000) + 20000 ))
	while ss -Htan "sport = :$_p" 2>/dev/null | grep -q . ; do
		_p=$(( _p + 1 < 32000 ? _p + 1 : 20000 ))
	done
	echo "$_p"
}

# pg_start NAME: initdb + start a cluster; sets ${NAME}_PORT and ${NAME}_DIR.
# A port taken between our check and the start is retried with another.
pg_start() {
	_name=$1
	_dir="$T/pg-$_name"
	mkdir -p "$_dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$_dir"
	pg_as "$PG_BINDIR/initdb" -D "$_dir/data" -U postgres -A trust --no-sync >/dev/null || return 1
	cp "$_dir/data/postgresql.conf" "$_dir/postgresql.conf.orig"
	for _try in 1 2 3 4 5 6; do
		_port=$(free_port)
		cp "$_dir/postgresql.conf.orig" "$_dir/data/postgresql.conf"
		cat >> "$_dir/data/postgresql.conf" <<CONF
port = $_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$_dir'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
fsync = off
logging_collector = off
CONF
		[ "$(id -u)" -eq 0 ] && chown postgres: "$_dir/data/postgresql.conf"
		if pg_as "$PG_BINDIR/pg_ctl" -D "$_dir/data" -l "$_dir/log" -w start >/dev/null; then
			_clusters="$_clusters $_dir/data"
			eval "${_name}_PORT=$_port; ${_name}_DIR=$_dir"
			return 0
		fi
		_pseed=$((_pseed + 7))	# next free_port guess differs
	done
	cat "$_dir/log"
	return 1
}

# psql_at PORT SQL...: run SQL as postgres, print unaligned tuples only.
psql_at() {
	_port=$1; shift
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$_port" -U postgres -d postgres "$@"
}

# table_sums PORT: "schema.table count md5" per user table, ordered
table_sums() {
	psql_at "$1" -c "select format('%I.%I', schemaname, tablename) from pg_tables
		where schemaname not in ('pg_catalog','information_schema','logship') order by 1" |
	while read -r t; do
		printf '%s %s\n' "$t" "$(psql_at "$1" -c "select count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\n' order by x::text)), '-') from $t x")"
	done
}

# same_data SRC_PORT DST_PORT: 0 if every table has the same rows
same_data() {
	table_sums "$1" > "$T/sums.src"
	table_sums "$2" > "$T/sums.dst"
	diff "$T/sums.src" "$T/sums.dst" > "$T/sums.diff"
}

# sequences_not_behind SRC_PORT DST_PORT: 0 if no target sequence is behind
sequences_not_behind() {
	psql_at "$1" -c "select schemaname||'.'||sequencename, coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.src"
	psql_at "$2" -c "select schemaname||'.'||sequencename, coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.dst"
	join -t'|' "$T/seq.src" "$T/seq.dst" | awk -F'|' '$3 < $2 { bad++ } END { exit bad > 0 }' &&
	[ "$(wc -l < "$T/seq.src")" = "$(join -t'|' "$T/seq.src" "$T/seq.dst" | wc -l)" ]
}

# psql_at_db PORT DB SQL...: like psql_at, in database DB
psql_at_db() {
	_port=$1; _db=$2; shift 2
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$_port" -U postgres -d "$_db" "$@"
}

# table_sums_db PORT DB: table_sums for database DB
table_sums_db() {
	psql_at_db "$1" "$2" -c "select format('%I.%I', schemaname, tablename) from pg_tables
		where schemaname not in ('pg_catalog','information_schema','logship') order by 1" |
	while read -r t; do
		printf '%s %s\n' "$t" "$(psql_at_db "$1" "$2" -c "select count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\n' order by x::text)), '-') from $t x")"
	done
}

# sequences_not_behind_db SRC_PORT DST_PORT DST_DB
sequences_not_behind_db() {
	psql_at "$1" -c "select schemaname||'.'||sequencename||'|'||coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.src"
	psql_at_db "$2" "$3" -c "select schemaname||'.'||sequencename||'|'||coalesce(last_value, 0) from pg_sequences order by 1" > "$T/seq.dst"
	[ -s "$T/seq.src" ] && [ "$(wc -l < "$T/seq.src")" = "$(join -t'|' "$T/seq.src" "$T/seq.dst" | wc -l)" ] &&
	join -t'|' "$T/seq.src" "$T/seq.dst" | awk -F'|' '$3 < $2 { bad++ } END { exit bad > 0 }'
}

# fingerprint PORT DB: one line per user table, partition, materialized
# view and view ("kind schema.name rows md5" over the rows as jsonb, so the
# columns' physical order does not count), one per large object
# ("lo oid owner md5"), then the schema as pg_dump -s prints it
# (publications and logship's own schema left out; the columns of each
# CREATE TABLE sorted, since pg_dump does not keep their physical order
# either).  Unlogged tables are listed without their rows: PostgreSQL never
# publishes them; a view over TABLESAMPLE without REPEATABLE (random rows
# by design) by its definition only; logship's own DDL-capture event
# triggers (logship-agent --ddl: the source's, never restored) not at all,
# like schema logship.  Two databases with the same fingerprint hold the
# same data and objects.
fingerprint() {
	psql_at_db "$1" "$2" -c "select c.relkind::text || c.relpersistence::text || ' ' || format('%I.%I', n.nspname, c.relname)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('r', 'm', 'v') and n.nspname not in ('pg_catalog', 'information_schema', 'logship')
		and n.nspname !~ '^pg_' order by 1" |
	while read -r kind rel; do
		only=""; [ "$kind" = rp ] && only=only
		if [ "$kind" = ru ]; then printf '%s %s unlogged\n' "$kind" "$rel"; continue; fi
		if [ "$kind" = mp ] && [ "$(psql_at_db "$1" "$2" -c "select relispopulated from pg_class where oid = '$rel'::regclass")" = f ]; then
			printf '%s %s unpopulated\n' "$kind" "$rel"; continue
		fi
		# a view over TABLESAMPLE without REPEATABLE returns other rows
		# at every call: its definition (in the schema below) is compared
		if [ "$kind" = vp ] && [ "$(psql_at_db "$1" "$2" -c "select pg_get_viewdef('$rel'::regclass) ~* 'tablesample' and
			pg_get_viewdef('$rel'::regclass) !~* 'repeatable'")" = t ]; then
			printf '%s %s random sample\n' "$kind" "$rel"; continue
		fi
		printf '%s %s %s\n' "$kind" "$rel" "$(psql_at_db "$1" "$2" -c "select count(*) || ' ' ||
			coalesce(md5(string_agg(to_jsonb(x)::text, E'\n' order by to_jsonb(x)::text)), '-') from $only $rel x")"
	done
	psql_at_db "$1" "$2" -c "select 'lo ' || m.oid || ' ' || pg_get_userbyid(m.lomowner) || ' ' || md5(lo_get(m.oid))
		from pg_largeobject_metadata m order by m.oid"
	"$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$1" -U postgres -s --no-publications --exclude-schema=logship "$2" |
		grep -v -e '^--' -e '^\\restrict' -e '^\\unrestrict' -e '^$' |
		awk '/^(CREATE|ALTER) EVENT TRIGGER logship_/ { skip = /^CREATE/; next }
			skip && /EXECUTE FUNCTION logship\./ { skip = 0; next } { skip = 0; print }' |
		awk '/^CREATE (UNLOGGED )?TABLE .*\($/ { print; n = 0; intable = 1; next }
			intable && /^\)/ { for (i = 1; i <= n; i++) print cols[i] | "sort"; close("sort"); print; intable = 0; next }
			intable { sub(/,$/, ""); cols[++n] = $0; next }
			{ print }'
}

wait_row() {	# wait_row PORT DB SQL-COUNT PID: until the count is 1, PID dies or 60 s
	_i=0
	until [ "$(psql_at_db "$1" "$2" -c "$3" 2>/dev/null)" = 1 ] || ! kill -0 "$4" 2>/dev/null ||
		[ $_i -gt 600 ]; do sleep 0.1; _i=$((_i + 1)); done
}

# awk functions: h(hex) and lsn("X/Y") as numbers
lsn_int_awk='function h(s,  i,c,v){v=0;s=toupper(s);for(i=1;i<=length(s);i++){c=index("0123456789ABCDEF",substr(s,i,1))-1;v=v*16+c};return v}
function lsn(x,  p){split(x,p,"/");return h(p[1])*4294967296+h(p[2])}'
# confirmed_early TXNSEG SAMPLES: how many samples ("CONFIRMED_LSN LAST_SEGNO",
# the slot's confirmed_flush_lsn and the newest stored segment) confirm a
# transaction whose segment was not yet stored; TXNSEG lists "H segno" for
# each segment header and "C end_lsn" for each commit, in store order
confirmed_early() {
	awk "$lsn_int_awk"'
	FNR==NR { if ($1=="H") seg=$2; else { n++; e[n]=lsn($2); s[n]=seg } ; next }
	$1=="" || $2=="" { next }
	{ c=lsn($1); last=h($2); for (i=1;i<=n;i++) if (e[i] <= c && s[i]+0 > last) { bad++; break } }
	END { print bad+0 }' "$1" "$2"
}
