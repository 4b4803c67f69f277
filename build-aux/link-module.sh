#!/bin/sh
# Links the Rust staticlib (which carries the C shim) into mod_auth_memsession.so.
# Usage: link-module.sh PROFILE OUTPUT
# MEMSESSION_FEATURES (cargo features) and CARGO_TARGET_DIR are honoured: the test module
# with fault injection is built with its own features into its own target directory.
# The native libraries the Rust standard library needs are asked of rustc
# (--print native-static-libs), never guessed; the answer is kept for no-op rebuilds.
set -eu
profile=$1
output=$2
cargo_flags=""
[ "$profile" = release ] && cargo_flags="--release"
[ -n "${MEMSESSION_FEATURES:-}" ] && cargo_flags="$cargo_flags --features $MEMSESSION_FEATURES"
target_dir=${CARGO_TARGET_DIR:-target}
build_dir=$(dirname "$output")
mkdir -p "$build_dir"
libs_file="$build_dir/native-libs.$profile"

rustc_out=$(cargo rustc $cargo_flags --lib --crate-type staticlib -- --print native-static-libs 2>&1) || {
    printf '%s\n' "$rustc_out" >&2
    exit 1
}
printf '%s\n' "$rustc_out" | grep -v 'native-static-libs' | grep -v '^note: Link against' | grep -v '^note: $' | grep -v '^$' >&2 || true
libs=$(printf '%s\n' "$rustc_out" | sed -n 's/.*native-static-libs: //p' | tail -n 1)
if [ -n "$libs" ]; then
    printf '%s\n' "$libs" > "$libs_file"
elif [ -f "$libs_file" ]; then
    libs=$(cat "$libs_file")
else
    # Nothing was recompiled, so rustc printed nothing: force one compile to learn them.
    touch src/lib.rs
    exec "$0" "$@"
fi

${CC:-cc} -shared -o "$output" \
    -Wl,--version-script=c-shim/exports.map \
    -Wl,-z,nodelete -Wl,-z,now -Wl,-z,relro -Wl,--gc-sections \
    -Wl,-u,auth_memsession_module \
    "$target_dir/$profile/libmemsession.a" $libs
