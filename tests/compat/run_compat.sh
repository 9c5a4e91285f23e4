#!/bin/sh
# run_compat.sh DISD PROGRAM [ARGS...]: runs PROGRAM on a fresh 2-node software fabric (nodes
# 4 "alpha" and 8 "beta", one link, plus $COMPAT_CONF_EXTRA) in a temporary directory; its
# exit status is PROGRAM's.
set -u
disd=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/dis-compat.XXXXXX") || exit 2
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
cat > "$dir/fabric.conf" <<CONF
node 4 name=alpha
node 8 name=beta
link 4 8
CONF
# Extra config lines ('|' between lines), e.g. the devices a lender declares.
if [ -n "${COMPAT_CONF_EXTRA:-}" ]; then
    printf '%s\n' "$COMPAT_CONF_EXTRA" | tr '|' '\n' >> "$dir/fabric.conf"
fi
for n in 4 8; do
    "$disd" --verbose --node-id "$n" --fabric "$dir" --config "$dir/fabric.conf" \
        2>"$dir/disd-$n.log" &
    pids="$pids $!"
done
# Ready when both daemons have logged "listening on" (after listen(): a socket file alone may
# precede it), polled for 10 s at most.
ready() {
    grep -q "listening on" "$dir/disd-4.log" && grep -q "listening on" "$dir/disd-8.log"
}
i=0
until ready; do
    i=$((i + 1))
    if [ "$i" -gt 1000 ]; then
        echo "run_compat: disd did not start" >&2
        cat "$dir"/disd-*.log >&2
        exit 2
    fi
    sleep 0.01
done
DIS_FABRIC=$dir "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "run_compat: $* exited $rc; daemon logs:" >&2
    tail -n 20 "$dir"/disd-*.log >&2
fi
exit "$rc"
