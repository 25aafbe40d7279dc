# lib-swift.sh: a private OpenStack Swift ("SAIO") with s3api on loopback for
# the S3 tests; source it after lib.sh.  Swift checks SigV4 for real (a wrong
# secret gets 403 SignatureDoesNotMatch, the body hash and region are
# checked), supports multipart uploads (parts below 5 MiB are EntityTooSmall)
# and ListObjectsV2, and answers 501 to any If-* header on PUT.
#
#  swift_start: rings and configs in $T/swift, the account, container,
#    object and proxy servers on free loopback ports (each tracked for
#    lib.sh's cleanup trap); sets S3_ENDPOINT (path-style, region
#    us-east-1) and exports the test credentials (tempauth test:tester /
#    testing, or $SWIFT_SECRET if set).  Returns 1 if the servers do not
#    come up.
#  swift_stop: stop them (SIGTERM, then SIGKILL after 5 s).
#  swift_mb BUCKET: create a bucket with a signed PUT (tests/tools/s3bucket).
#  swift_skip_unless_installed: skip_all when Swift is not installed.
#
# Needs the Debian packages swift swift-proxy swift-account swift-container
# swift-object python3-swift, run with Debian's /usr/bin/python3 (a pyenv or
# venv python cannot import swift).  /etc/swift/swift.conf from the package
# is always read (hash prefix/suffix, storage policies); nothing else in
# /etc is.  Logs go to $T/swift/log (syslog over UDP is dropped).

SWIFT_PY=/usr/bin/python3
S3BUCKET="$top_builddir/tests/tools/s3bucket"
_swift_pids=""

swift_skip_unless_installed() {
	[ -x /usr/bin/swift-proxy-server ] && [ -r /etc/swift/swift.conf ] &&
		"$SWIFT_PY" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
		skip_all "OpenStack Swift with s3api is not installed (tools/bootstrap: swift swift-proxy swift-account swift-container swift-object python3-swift)"
}

# _swift_ports: four distinct free ports into _sw_acct _sw_cont _sw_obj _sw_proxy
_swift_ports() {
	_sw_ports=""
	while [ "$(echo $_sw_ports | wc -w)" -lt 4 ]; do
		_p=$(free_port)
		case " $_sw_ports " in *" $_p "*) continue;; esac
		_sw_ports="$_sw_ports $_p"
	done
	set -- $_sw_ports
	_sw_acct=$1; _sw_cont=$2; _sw_obj=$3; _sw_proxy=$4
}

# _swift_rings DIR: rings of part power 6, one replica, one device
# (RingBuilder directly: 0.4 s, against 7 s with swift-ring-builder)
_swift_rings() {
	"$SWIFT_PY" - "$1" "$_sw_acct" "$_sw_cont" "$_sw_obj" <<'EOF'
import sys
from swift.common.ring import RingBuilder
for name, port in zip(('account', 'container', 'object'), sys.argv[2:5]):
    b = RingBuilder(6, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
               'port': int(port), 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (sys.argv[1], name))
EOF
}

# _swift_common: the [DEFAULT] settings every server shares
_swift_common() {
	cat <<EOF
user = $(id -un)
bind_ip = 127.0.0.1
swift_dir = $_sw_etc
devices = $_sw_base/srv
mount_check = false
disable_fallocate = true
workers = 0
log_udp_host = 127.0.0.1
log_udp_port = 9
log_level = INFO
recon_cache_path = $_sw_base/cache
EOF
}

# _swift_configs: account/container/object servers and the proxy with s3api
_swift_configs() {
	for _s in account:$_sw_acct container:$_sw_cont object:$_sw_obj; do
		{ echo "[DEFAULT]"; echo "bind_port = ${_s##*:}"; _swift_common
		  printf '[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n' \
			"${_s%%:*}" "${_s%%:*}" "${_s%%:*}"; } > "$_sw_etc/${_s%%:*}-server.conf"
	done
	{ echo "[DEFAULT]"; echo "bind_port = $_sw_proxy"; _swift_common; cat <<'EOF'
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:9
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
EOF
	} | sed "s/^user_test_tester = testing /user_test_tester = ${SWIFT_SECRET:-testing} /" \
		> "$_sw_etc/proxy-server.conf"
}

# _swift_up: 0 once the four servers accept connections and the proxy is
# healthy (asked with Python, which Swift needs anyway, not curl or ss)
_swift_up() {
	"$SWIFT_PY" - "$_sw_acct" "$_sw_cont" "$_sw_obj" "$_sw_proxy" 2>/dev/null <<'EOF'
import socket, sys, urllib.request
for port in sys.argv[1:4]:
    socket.create_connection(('127.0.0.1', int(port)), timeout=1).close()
urllib.request.urlopen('http://127.0.0.1:%s/healthcheck' % sys.argv[4], timeout=1)
EOF
}

swift_start() {
	_sw_base="$T/swift"; _sw_etc="$_sw_base/etc"; _sw_log="$_sw_base/log"
	mkdir -p "$_sw_etc" "$_sw_log" "$_sw_base/srv/d1" "$_sw_base/cache"
	_swift_ports
	_swift_rings "$_sw_etc" || return 1
	_swift_configs
	for _s in account container object proxy; do
		"$SWIFT_PY" "/usr/bin/swift-$_s-server" "$_sw_etc/$_s-server.conf" \
			> "$_sw_log/$_s.log" 2>&1 &
		track_pid $!
		_swift_pids="$_swift_pids $!"
	done
	_i=0
	until _swift_up; do
		_i=$((_i + 1))
		if [ $_i -gt 300 ]; then
			echo "# swift did not come up in 30 s; see below"
			tail -n 20 "$_sw_log"/*.log | sed 's/^/# /'
			swift_stop
			return 1
		fi
		sleep 0.1
	done
	S3_ENDPOINT="http://127.0.0.1:$_sw_proxy"
	AWS_ACCESS_KEY_ID=test:tester; AWS_SECRET_ACCESS_KEY=${SWIFT_SECRET:-testing}
	AWS_REGION=us-east-1
	export S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	unset AWS_SESSION_TOKEN
}

swift_stop() {
	[ -n "$_swift_pids" ] || return 0
	kill $_swift_pids 2>/dev/null || true
	_i=0
	while [ $_i -lt 50 ]; do
		_alive=0
		for _p in $_swift_pids; do kill -0 "$_p" 2>/dev/null && _alive=1; done
		[ $_alive = 0 ] && break
		sleep 0.1; _i=$((_i + 1))
	done
	kill -9 $_swift_pids 2>/dev/null || true
	_swift_pids=""
}

swift_mb() {
	"$S3BUCKET" mb "$1"
}
