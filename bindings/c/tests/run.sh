#!/usr/bin/env bash
# The C binding tests, run by `cargo xtask test` (from the workspace root):
#
#   1. builds libculvert_ffi (static and shared) and the Rust peer
#      (`cargo build --release -p culvert-ffi --lib --example rust_peer`);
#   2. compiles the C examples and tests with `cc -Wall -Wextra -Werror` against
#      target/release/libculvert_ffi.a (and one against the .so, with an rpath, and
#      one with the flags of the generated culvert.pc when pkg-config exists), after
#      checking the .so's SONAME (libculvert_ffi.so.<MAJOR>; with readelf);
#   3. runs each scenario under `timeout 60` in its own namespace directory
#      (CULVERT_ROOT=<fresh temp dir>): the in-process API test, then C and Rust
#      processes talking to each other over message pipes, mailslots and ports
#      (1 MiB calls through shared-memory views).
#
# Exits non-zero if anything fails; the last line is `c-bindings: N passed, N failed`.
# Needs only the Rust toolchain and a C compiler (`cc`, or $CC).
set -u -o pipefail
ulimit -c 0 # the crash scenario aborts a process on purpose: no core files

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
cc="${CC:-cc}"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
build="$target/c-bindings"
mkdir -p "$build"

passed=0
failed=0
summary=()

pass() { passed=$((passed + 1)); summary+=("PASS  $1"); echo "c-bindings: PASS $1"; }
fail() { failed=$((failed + 1)); summary+=("FAIL  $1"); echo "c-bindings: FAIL $1" >&2; }
finish() {
    echo "c-bindings: ---- summary ----"
    printf 'c-bindings:   %s\n' "${summary[@]}"
    echo "c-bindings: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# ---- build -----------------------------------------------------------------------
echo "c-bindings: == cargo build --release -p culvert-ffi --lib --example rust_peer =="
if ! "${CARGO:-cargo}" build --release -p culvert-ffi --lib --example rust_peer; then
    fail "cargo build"
    finish
fi
lib_a="$target/release/libculvert_ffi.a"
lib_so_dir="$target/release"
peer="$target/release/examples/rust_peer"
for f in "$lib_a" "$lib_so_dir/libculvert_ffi.so" "$peer"; do
    [ -e "$f" ] || { fail "missing build output $f"; finish; }
done
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
major="${version%%.*}"
soname="libculvert_ffi.so.$major"
# Programs linked against the .so look for it by its SONAME at run time; cargo only
# writes libculvert_ffi.so, so add the SONAME link next to it (as an installer would).
ln -sf libculvert_ffi.so "$lib_so_dir/$soname"

# The library as users ship it: the `dist` profile (LTO, no debug info).
echo "c-bindings: == cargo build --profile dist -p culvert-ffi --lib =="
if ! "${CARGO:-cargo}" build --profile dist -p culvert-ffi --lib; then
    fail "cargo build --profile dist"
    finish
fi
dist_a="$target/dist/libculvert_ffi.a"
[ -e "$dist_a" ] || { fail "missing build output $dist_a"; finish; }

# ---- SONAME and pkg-config file --------------------------------------------------
if command -v readelf >/dev/null 2>&1; then
    got="$(readelf -d "$lib_so_dir/libculvert_ffi.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
    echo "c-bindings: SONAME of libculvert_ffi.so: ${got:-<none>}"
    if [ "$got" = "$soname" ]; then pass "libculvert_ffi.so has SONAME $soname"; else
        fail "libculvert_ffi.so has SONAME '${got}', expected $soname"
    fi
else
    echo "c-bindings: note: readelf not found, SONAME check skipped"
fi
if bash "$root/bindings/c/pkgconfig.sh" "$build" "$lib_so_dir" "$version"; then
    echo "c-bindings: wrote $build/culvert.pc"
else
    fail "generate culvert.pc"
fi

cflags=(-std=c11 -Wall -Wextra -Werror -O2 -g -I "$root/bindings/c/include" -I "$root/bindings/c/tests")
static_libs=("$lib_a" -lpthread -ldl -lm)

compile() { # compile <output> <source> <link args...>
    local out="$1" src="$2"
    shift 2
    echo "c-bindings: $cc ${cflags[*]} $src -o $out $*"
    "$cc" "${cflags[@]}" "$src" -o "$build/$out" "$@"
}

echo "c-bindings: == compile =="
ok=1
compile pipe_echo_server bindings/c/examples/pipe_echo_server.c "${static_libs[@]}" || ok=0
compile pipe_echo_client bindings/c/examples/pipe_echo_client.c "${static_libs[@]}" || ok=0
compile port_server bindings/c/examples/port_server.c "${static_libs[@]}" || ok=0
compile port_client bindings/c/tests/port_client.c "${static_libs[@]}" || ok=0
compile mailslot_peer bindings/c/tests/mailslot_peer.c "${static_libs[@]}" || ok=0
compile api bindings/c/tests/api.c "${static_libs[@]}" || ok=0
compile api_dist bindings/c/tests/api.c "$dist_a" -lpthread -ldl -lm -Wl,--gc-sections || ok=0
compile api_shared bindings/c/tests/api.c -L "$lib_so_dir" -Wl,-rpath,"$lib_so_dir" \
    -lculvert_ffi -lpthread || ok=0
# One test built the way users are told to: flags from pkg-config (links the .so).
have_pkg_config=0
if command -v pkg-config >/dev/null 2>&1 && [ -e "$build/culvert.pc" ]; then
    have_pkg_config=1
    if pc_flags="$(PKG_CONFIG_PATH="$build" pkg-config --cflags --libs culvert)"; then
        echo "c-bindings: pkg-config --cflags --libs culvert: $pc_flags"
        # shellcheck disable=SC2086 # pkg-config output is a list of words
        compile api_pkgconfig bindings/c/tests/api.c $pc_flags -Wl,-rpath,"$lib_so_dir" \
            -lpthread || ok=0
    else
        ok=0
    fi
else
    echo "c-bindings: note: pkg-config not found, the pkg-config build is skipped"
fi
if [ "$ok" -eq 1 ]; then pass "compile C examples and tests (-Wall -Wextra -Werror)"; else
    fail "compile C examples and tests"
    finish
fi
# The header is C++-compatible (extern "C"); check it when a C++ compiler exists.
cxx="${CXX:-c++}"
if command -v "$cxx" >/dev/null 2>&1; then
    if echo '#include "culvert.h"' | "$cxx" -x c++ -std=c++11 -Wall -Wextra -Werror \
        -I "$root/bindings/c/include" -fsyntax-only -; then
        pass "culvert.h compiles as C++"
    else
        fail "culvert.h compiles as C++"
    fi
fi

# ---- scenarios -------------------------------------------------------------------
scratch="$(mktemp -d "${TMPDIR:-/tmp}/culvert-c-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# run_alone <title> <command...>: one process.
run_alone() {
    local title="$1"
    shift
    local ns="$scratch/ns.$((passed + failed))"
    mkdir -p "$ns"
    local t0 t1 rc
    t0=$(date +%s.%N)
    CULVERT_ROOT="$ns" timeout 60 "$@"
    rc=$?
    t1=$(date +%s.%N)
    local secs
    secs=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
    if [ "$rc" -eq 0 ]; then pass "$title (${secs} s)"; else fail "$title (exit $rc, ${secs} s)"; fi
}

# run_pair <title> <server command> -- <client command>: a server process in the
# background and a client in the foreground, both must exit 0.
run_pair() {
    local title="$1"
    shift
    local server=() client=()
    while [ "$1" != "--" ]; do server+=("$1"); shift; done
    shift
    client=("$@")
    local ns="$scratch/ns.$((passed + failed))"
    mkdir -p "$ns"
    local t0 t1 src crc secs
    t0=$(date +%s.%N)
    CULVERT_ROOT="$ns" timeout 60 "${server[@]}" &
    local spid=$!
    CULVERT_ROOT="$ns" timeout 60 "${client[@]}"
    crc=$?
    wait "$spid"
    src=$?
    t1=$(date +%s.%N)
    secs=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
    if [ "$crc" -eq 0 ] && [ "$src" -eq 0 ]; then
        pass "$title (${secs} s)"
    else
        fail "$title (client exit $crc, server exit $src, ${secs} s)"
    fi
}

# run_pair_crash: like run_pair, but the server is expected to die (abort).
run_pair_crash() {
    local title="$1"
    shift
    local server=() client=()
    while [ "$1" != "--" ]; do server+=("$1"); shift; done
    shift
    client=("$@")
    local ns="$scratch/ns.$((passed + failed))"
    mkdir -p "$ns"
    local t0 t1 src crc secs
    t0=$(date +%s.%N)
    CULVERT_ROOT="$ns" timeout 60 "${server[@]}" &
    local spid=$!
    CULVERT_ROOT="$ns" timeout 60 "${client[@]}"
    crc=$?
    wait "$spid"
    src=$?
    t1=$(date +%s.%N)
    secs=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
    # 134 = 128 + SIGABRT: the server died as planned (124 would be a timeout).
    if [ "$crc" -eq 0 ] && [ "$src" -eq 134 ]; then
        pass "$title (${secs} s)"
    else
        fail "$title (client exit $crc, server exit $src, ${secs} s)"
    fi
}

echo "c-bindings: == scenarios =="
run_alone "api: in-process C API checks (static library)" "$build/api"
run_alone "api: in-process C API checks (shared library)" "$build/api_shared"
run_alone "api: in-process C API checks (dist static library)" "$build/api_dist"
if command -v strip >/dev/null 2>&1; then
    strip -o "$build/api_dist.stripped" "$build/api_dist"
    echo "c-bindings: size of the api test linked against the dist static library:" \
        "$(wc -c <"$build/api_dist") bytes, stripped $(wc -c <"$build/api_dist.stripped") bytes"
fi
if [ "$have_pkg_config" -eq 1 ]; then
    run_alone "api: in-process C API checks (built with pkg-config)" "$build/api_pkgconfig"
fi
run_pair "pipe (message mode): C client -> Rust server" \
    "$peer" pipe-echo-server echo -- "$build/pipe_echo_client" echo
run_pair "pipe (message mode): Rust client -> C server" \
    "$build/pipe_echo_server" echo -- "$peer" pipe-echo-client echo
run_pair "pipe (message mode): C client -> C server (the examples)" \
    "$build/pipe_echo_server" echo -- "$build/pipe_echo_client" echo
run_pair "mailslot: C writer -> Rust reader (5000 messages)" \
    "$peer" mailslot-reader slot 5000 -- "$build/mailslot_peer" writer slot 5000
run_pair "mailslot: Rust writer -> C reader (5000 messages)" \
    "$build/mailslot_peer" reader slot 5000 -- "$peer" mailslot-writer slot 5000
run_pair "port: C client -> Rust server (1 MiB view call)" \
    "$peer" port-server calc -- "$build/port_client" calc
run_pair "port: Rust client -> C server (1 MiB view call)" \
    "$build/port_server" calc -- "$peer" port-client calc
run_pair_crash "port: Rust server dies mid-call -> C client gets CULVERT_E_PEER_DIED" \
    "$peer" port-server-crash calc -- "$build/port_client" calc expect-crash

finish
