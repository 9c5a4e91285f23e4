#!/bin/sh
# check_coverage.sh INCDIR COMPATDIR: every function, macro constant and enumerator the public
# headers declare is used by at least one compat program (so the suite keeps up with them).
set -u
inc=$1 dir=$2
fail=0
names=$(
    {
        # Functions.
        grep -ho '[ *]SCI[A-Za-z]*(' "$inc"/*.h | tr -d ' *('
        # Macro constants (not the include guards, not the name-mapping macros).
        grep -ho '^#define [A-Z][A-Z0-9_]*' "$inc"/*.h | sed 's/#define //' |
            grep -v '_H$' | grep -v '^_SISCI'
        # Enumerators.
        grep -ho '^ *\(SCI\|DIS\)_[A-Z0-9_]*\( = [^,]*\)\?,\?$' "$inc"/*.h |
            sed 's/^ *//; s/ =.*//; s/,$//'
    } | sort -u
)
count=0
for n in $names; do
    count=$((count + 1))
    if ! grep -qw "$n" "$dir"/compat_*.c "$dir"/compat.h; then
        echo "not used by any compat program: $n" >&2
        fail=1
    fi
done
echo "$count public names checked"
exit "$fail"
