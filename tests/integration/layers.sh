#!/bin/sh
# The tree shows the layers (ARCHITECTURE.md): no file includes a header
# from a layer above its own, src/format and src/store know nothing of each
# other, the programs use only the public headers of src/ and never each
# other's.  The checker is also run on a tree with one violation of each
# rule, to show that it can fail.
. "$(dirname "$0")/lib.sh"

rank() {	# the layer of a directory under src/, or of a program
	case $1 in
	common) echo 0 ;; format|store) echo 1 ;; pg|filter) echo 2 ;;
	repo) echo 3 ;; agent|restore) echo 4 ;; *) echo 9 ;;
	esac
}

violations() {	# violations ROOT: one line per include that breaks a rule
	(cd "$1" && find src agent restore -name '*.[ch]' | sort) | while read -r f; do
		case $f in
		src/*) dir=${f#src/}; dir=${dir%%/*} ;;
		*) dir=${f%%/*} ;;
		esac
		sed -n 's/^#include "\([^"]*\)".*/\1/p' "$1/$f" | while read -r inc; do
			case $inc in
			*/*) to=${inc%%/*} ;;
			*) case $f in src/*) echo "$f: $inc does not name its layer" ;; esac
			   continue ;;
			esac
			case $inc in
			store/store_int.h|store/http.h|store/xml.h|store/s3/*|store/azure/*|store/gcs/*|filter/filter_int.h)
				[ "$dir" = "${inc%%/*}" ] || echo "$f: $inc is internal to src/${inc%%/*}"
				continue ;;
			esac
			[ "$to" = "$dir" ] && continue
			if [ "$(rank "$to")" -ge "$(rank "$dir")" ]; then
				echo "$f: $inc is not below $dir"
			fi
		done
	done
}

out=$(violations "$top_srcdir")
is "$out" "" "no file includes a header from its own layer's peers or from above"
n=$(cd "$top_srcdir" && find src agent restore -name '*.[ch]' | wc -l)
ok "$([ "$n" -gt 50 ]; echo $?)" "the check read the tree ($n files)"

# The checker itself fails on each kind of violation.
mkdir -p "$T/tree"
cp -R "$top_srcdir/src" "$top_srcdir/agent" "$top_srcdir/restore" "$T/tree/"
echo '#include "agent.h"' >> "$T/tree/src/common/log.c"
echo '#include "store/store.h"' >> "$T/tree/src/format/blob.c"
echo '#include "repo/base.h"' >> "$T/tree/src/pg/pgtool.c"
echo '#include "store/store_int.h"' >> "$T/tree/restore/replay.c"
echo '#include "filter/filter_int.h"' >> "$T/tree/agent/stream.c"
bad=$(violations "$T/tree")
like "$bad" "src/common/log.c: agent.h does not name its layer" "a library file including a program header is caught"
like "$bad" "src/format/blob.c: store/store.h is not below format" "format including store is caught"
like "$bad" "src/pg/pgtool.c: repo/base.h is not below pg" "a lower layer including a higher one is caught"
like "$bad" "restore/replay.c: store/store_int.h is internal" "a program including a backend header is caught"
like "$bad" "agent/stream.c: filter/filter_int.h is internal" "a program including the filter's private header is caught"
is "$(printf '%s\n' "$bad" | wc -l)" 5 "and nothing else"
done_testing
