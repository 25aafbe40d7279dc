#!/bin/sh
# tests/tools/faultproxy in front of a small HTTP server (Debian's python3):
#  - each action (500, 503, reset, stall, pass) happens to the connection
#    the proxy's log names, at about its configured rate
#  - pass-through responses are intact both ways (a 1 MiB GET, a 1 MiB PUT)
#  - the same seed draws the same actions; a 503 drains an unread body;
#  - --mode-file, reread on SIGHUP: down answers 503, refuse resets,
#    slow throttles to --rate (a 1 MiB PUT at 256 KiB/s takes 4 s), an
#    unknown mode ends the proxy with exit 2
#  - SIGTERM stops the proxy with exit 0
. "$(dirname "$0")/lib.sh"

FAULTPROXY="$top_builddir/tests/tools/faultproxy"
PY=/usr/bin/python3
[ -x "$FAULTPROXY" ] || skip_all "tests/tools/faultproxy is not built"
[ -x "$PY" ] || skip_all "no /usr/bin/python3 for the upstream server"
command -v curl >/dev/null || skip_all "no curl"

# upstream: GET serves files from $T/www, PUT answers the body's md5
mkdir -p "$T/www"
head -c 1048576 /dev/urandom > "$T/www/blob"
WANT=$(md5sum < "$T/www/blob" | cut -d' ' -f1)
cat > "$T/upstream.py" <<'PY'
import hashlib, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = hashlib.md5(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
    lambda *a: H(*a, directory=sys.argv[1]))
print(s.server_address[1], flush=True)
s.serve_forever()
PY
"$PY" "$T/upstream.py" "$T/www" > "$T/up.port" 2>"$T/up.err" &
track_pid $!
i=0; until [ -s "$T/up.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
UP=$(head -n 1 "$T/up.port")

# proxy_start NAME ARGS...: start a proxy; its port in PORT, pid in PROXY_PID
proxy_start() {
	_pn=$1; shift
	"$FAULTPROXY" --upstream "127.0.0.1:$UP" "$@" > "$T/$_pn.port" 2> "$T/$_pn.log" &
	PROXY_PID=$!; track_pid $PROXY_PID
	i=0; until [ -s "$T/$_pn.port" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
	PORT=$(head -n 1 "$T/$_pn.port")
}

# outcome URL: what the client saw: pass, 500, 503, reset, stall or other
outcome() {
	_r=$(curl -s -o "$T/body" -w '%{http_code} %{time_total}' --max-time 10 "$1"); _rc=$?
	case "$_rc ${_r%% *}" in
	"0 200") [ "$(md5sum < "$T/body" | cut -d' ' -f1)" = "$WANT" ] && echo pass || echo corrupt ;;
	"0 500") echo 500 ;;
	"0 503") echo 503 ;;
	"56 000") echo reset ;;
	"52 000") awk -v t="${_r#* }" 'BEGIN { print (t >= 0.9 ? "stall" : "short-stall") }' ;;
	*) echo "other($_rc ${_r%% *})" ;;
	esac
}

N=200
proxy_start p1 --seed 42 --p500 0.1 --p503 0.1 --preset 0.1 --pstall 0.04 --stall-seconds 1
[ -n "$PORT" ]; ok $? "faultproxy prints its port ($PORT) on the first line"
i=0; while [ $i -lt $N ]; do outcome "http://127.0.0.1:$PORT/blob"; i=$((i+1)); done > "$T/seen"
sed -n 's/^faultproxy: conn=[0-9]* action=//p' "$T/p1.log" > "$T/logged"
is "$(wc -l < "$T/logged" | tr -d ' ')" "$N" "one log line per connection"
check "every connection got the action the log names" diff "$T/logged" "$T/seen"
rate_ok() {	# rate_ok ACTION P: count within 4 standard deviations of N*P
	awk -v a="$1" -v p="$2" -v n="$N" '$1 == a { c++ }
		END { m = n * p; sd = sqrt(n * p * (1 - p)); print c + 0;
		      exit !(c >= m - 4 * sd && c <= m + 4 * sd && c > 0) }' "$T/seen"
}
for a in "500 0.1" "503 0.1" "reset 0.1" "stall 0.04" "pass 0.66"; do
	# shellcheck disable=SC2086
	set -- $a
	c=$(rate_ok "$1" "$2"); ok $? "$1: $c of $N connections (configured rate $2)"
done

# the same seed draws the same actions
proxy_start p2 --seed 42 --p500 0.1 --p503 0.1 --preset 0.1 --pstall 0.04 --stall-seconds 1
i=0; while [ $i -lt 30 ]; do outcome "http://127.0.0.1:$PORT/blob" >/dev/null; i=$((i+1)); done
sed -n 's/^faultproxy: conn=[0-9]* action=//p' "$T/p2.log" > "$T/logged2"
is "$(head -n 30 "$T/logged" | tr '\n' ' ')" "$(tr '\n' ' ' < "$T/logged2")" "the same seed draws the same actions"

# pass-through both ways: a 1 MiB PUT through a proxy that only passes
proxy_start p3 --seed 1
got=$(curl -s --max-time 10 -T "$T/www/blob" "http://127.0.0.1:$PORT/up")
is "$got" "$WANT" "a 1 MiB request body arrives intact upstream"
is "$(outcome "http://127.0.0.1:$PORT/blob")" "pass" "a 1 MiB response arrives intact"

# a 503 with an unread 1 MiB body, with and without Expect: 100-continue
proxy_start p4 --seed 1 --p503 1
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -T "$T/www/blob" "http://127.0.0.1:$PORT/up")" "503" \
	"503 before the body (Expect: 100-continue)"
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Expect:' -T "$T/www/blob" "http://127.0.0.1:$PORT/up")" "503" \
	"503 with the body drained"
like "$(curl -s -D - -o /dev/null --max-time 10 "http://127.0.0.1:$PORT/x")" "Connection: close" "the 503 says Connection: close"

# modes from --mode-file, reread on SIGHUP
: > "$T/mode"
proxy_start p5 --seed 1 --mode-file "$T/mode" --rate 262144
mode() { echo "$1" > "$T/mode"; kill -HUP $PROXY_PID; wait_mode "$1"; }
wait_mode() { i=0; until grep -q "mode $1\$" "$T/p5.log" || [ $i -gt 50 ]; do sleep 0.1; i=$((i+1)); done; }
is "$(outcome "http://127.0.0.1:$PORT/blob")" "pass" "mode normal (an empty file): connections pass"
mode down
is "$(outcome "http://127.0.0.1:$PORT/blob")" "503" "mode down: a new connection is answered 503"
mode refuse
like "$(outcome "http://127.0.0.1:$PORT/blob")" "^(reset|other)" "mode refuse: a new connection is reset unanswered"
grep -q "action=refused" "$T/p5.log"; ok $? "mode refuse: logged as refused"
mode slow
t0=$(date +%s.%N)
got=$(curl -s --max-time 20 -T "$T/www/blob" "http://127.0.0.1:$PORT/up")
took=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
is "$got" "$WANT" "mode slow: a 1 MiB body arrives intact"
awk -v t="$took" 'BEGIN { exit !(t >= 3.5) }'; ok $? "mode slow: at 256 KiB/s it took ${took} s (>= 3.5)"
like "$(grep " done up=" "$T/p5.log" | tail -n 1)" "done up=1048[0-9]{3} down=[0-9]+ seconds=[4-9]" \
	"the proxy logs the bytes and seconds of a passing connection"
mode normal
is "$(outcome "http://127.0.0.1:$PORT/blob")" "pass" "mode normal again: connections pass"
echo sideways > "$T/mode"; kill -HUP $PROXY_PID; wait $PROXY_PID; rc=$?
is "$rc" 2 "an unknown mode: faultproxy exits 2"
grep -q 'says "sideways": expected normal, down, refuse or slow' "$T/p5.log"; ok $? "... naming the word and the modes"

proxy_start p6 --seed 1
kill -TERM $PROXY_PID; wait $PROXY_PID
is "$?" 0 "SIGTERM: faultproxy exits 0"

done_testing
