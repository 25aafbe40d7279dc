# lib-azurite.sh: a private Azurite blob service for a test (sourced after
# lib.sh).  Azurite checks Shared Key signatures and SAS tokens like Azure.
#  - az_start: start it on a free port in $T/azurite (its pid tracked, so
#    lib.sh kills it on exit); sets AZ_PORT and AZ_ENDPOINT (path style) and
#    exports AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY for the development
#    account every Azurite has
#  - az_mkcontainer NAME: create a container with a signed request
#  - az_requests PATTERN: how many requests so far had PATTERN in their URL
#  - az_sync: wait until Azurite's debug log shows every request so far
#  - az_stop
# Azurite is an npm package installed with
#	npm install --prefix DIR azurite@3.35.0
# LOGSHIP_AZURITE names DIR; by default /opt/logship-npm (tools/bootstrap),
# then $HOME/.cache/logship-npm.  Without it (or node) a test should skip.

AZSTORE="$top_builddir/tests/tools/azstore"
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# az_main: the path of Azurite's blob server, or nothing.
az_main() {
	for _d in ${LOGSHIP_AZURITE:-} /opt/logship-npm "${HOME:-/nonexistent}/.cache/logship-npm"; do
		_m="$_d/node_modules/azurite/dist/src/blob/main.js"
		[ -f "$_m" ] && { echo "$_m"; return 0; }
	done
	return 1
}

# az_start: 0 once Azurite answers; a port taken meanwhile is retried.
az_start() {
	_main=$(az_main) || { echo "# azurite not found: npm install --prefix /opt/logship-npm azurite@3.35.0 (or set LOGSHIP_AZURITE)"; return 2; }
	command -v node >/dev/null 2>&1 || { echo "# node not found"; return 2; }
	AZ_DIR="$T/azurite"
	for _try in 1 2 3 4 5; do
		rm -rf "$AZ_DIR"; mkdir -p "$AZ_DIR/data"
		AZ_PORT=$(free_port)
		node "$_main" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
			--location "$AZ_DIR/data" --disableTelemetry --skipApiVersionCheck \
			--debug "$AZ_DIR/debug.log" > "$AZ_DIR/azurite.log" 2>&1 &
		AZ_PID=$!; track_pid $AZ_PID
		for _i in $(seq 1 100); do
			kill -0 $AZ_PID 2>/dev/null || break
			grep -q "successfully listens" "$AZ_DIR/azurite.log" 2>/dev/null && break
			sleep 0.1
		done
		if grep -q "successfully listens" "$AZ_DIR/azurite.log"; then
			AZ_ENDPOINT="http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT"
			AZURE_STORAGE_ACCOUNT=$AZ_ACCOUNT; AZURE_STORAGE_KEY=$AZ_KEY
			export AZURE_STORAGE_ACCOUNT AZURE_STORAGE_KEY
			return 0
		fi
		kill $AZ_PID 2>/dev/null; wait $AZ_PID 2>/dev/null
		_pseed=$((_pseed + 7))	# next free_port guess differs
	done
	sed 's/^/# /' "$AZ_DIR/azurite.log"
	return 1
}

az_mkcontainer() {
	AZURE_STORAGE_ACCOUNT=$AZ_ACCOUNT AZURE_STORAGE_KEY=$AZ_KEY \
		"$AZSTORE" "$AZ_ENDPOINT" mkcontainer "$1"
}

# az_sync: wait until Azurite's debug log (written behind) holds every
# request made so far: send one more and wait for it to show.
_az_syncs=0
az_sync() {
	_az_syncs=$((_az_syncs + 1))
	"$AZSTORE" "$AZ_ENDPOINT" head azure://azsync/x "mark$_az_syncs" >/dev/null 2>&1
	_i=0; until grep -qF "/azsync/x/mark$_az_syncs " "$AZ_DIR/debug.log" || [ $_i -gt 100 ]; do
		sleep 0.05; _i=$((_i + 1))
	done
}

az_requests() {
	az_sync
	grep -F "RequestURL=" "$AZ_DIR/debug.log" | grep -cF -- "$1"
}

az_stop() {
	[ -n "${AZ_PID:-}" ] || return 0
	kill $AZ_PID 2>/dev/null; wait $AZ_PID 2>/dev/null
	AZ_PID=""
}
