#!/bin/sh
# Proves AddressSanitizer is really there before `make sanitize` trusts a clean run: a planted
# use-after-free and a planted leak, built with the same flags, must both be reported.
# Usage: prove-asan.sh [+toolchain]   (empty: stable with RUSTC_BOOTSTRAP=1)
set -eu
toolchain=${1:-}
[ -n "$toolchain" ] || export RUSTC_BOOTSTRAP=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
rustc $toolchain -Zsanitizer=address --target x86_64-unknown-linux-gnu -g \
    -o "$dir/canary" "$(dirname "$0")/asan_canary.rs"
nm "$dir/canary" | grep -q '__asan_init' || { echo "no ASan runtime in the canary"; exit 1; }
for bug in use-after-free leak; do
    if ASAN_OPTIONS=detect_leaks=1 "$dir/canary" $bug >"$dir/$bug.out" 2>&1; then
        echo "ASan did NOT catch the planted $bug:"; cat "$dir/$bug.out"; exit 1
    fi
    case $bug in
        use-after-free) pattern='AddressSanitizer: heap-use-after-free' ;;
        leak) pattern='LeakSanitizer: detected memory leaks' ;;
    esac
    grep -q "$pattern" "$dir/$bug.out" || { echo "unexpected report for $bug:"; cat "$dir/$bug.out"; exit 1; }
    echo "asan: planted $bug caught ($pattern)"
done
