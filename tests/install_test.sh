#!/usr/bin/env bash
# `cmake --install` gives a ttt that runs from any directory: it finds its configuration tree
# beside itself (P/share/ttt/configs), TTT_CONFIG_DIR and --config-dir take precedence, and a
# missing tree is a one-line error.
#   install_test.sh BUILD_DIR
set -euo pipefail
build="$1"
prefix="$(mktemp -d)"
work="$(mktemp -d)"
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$work"  # no configs/ here, and not the source tree
out="$("$prefix/bin/ttt" info +experiment=3b/extension/ext-3b-e2e-128K)"
grep -q "^# configuration tree: $prefix/share/ttt/configs$" <<<"$out" || fail "installed tree not used: $(head -1 <<<"$out")"
grep -q "seq_length: 131072" <<<"$out" || fail "ext-3b-e2e-128K not resolved"
grep -q "total: 2897722880" <<<"$out" || fail "3B parameter count"

# TTT_CONFIG_DIR, then --config-dir (before or after the subcommand), take precedence.
cp -r "$prefix/share/ttt/configs" "$work/env-configs"
sed -i 's/^name: tiny$/name: tiny-from-env/' "$work/env-configs/model/tiny.yaml"
cp -r "$prefix/share/ttt/configs" "$work/flag-configs"
sed -i 's/^name: tiny$/name: tiny-from-flag/' "$work/flag-configs/model/tiny.yaml"
TTT_CONFIG_DIR="$work/env-configs" "$prefix/bin/ttt" info model=tiny | grep -q "name: tiny-from-env" || fail "TTT_CONFIG_DIR"
TTT_CONFIG_DIR="$work/env-configs" "$prefix/bin/ttt" --config-dir "$work/flag-configs" info model=tiny |
  grep -q "name: tiny-from-flag" || fail "--config-dir before the subcommand"
"$prefix/bin/ttt" info --config-dir "$work/flag-configs" model=tiny | grep -q "name: tiny-from-flag" ||
  fail "--config-dir after the subcommand"

# A tree that is not there: one line, exit 2.
set +e
err="$("$prefix/bin/ttt" --config-dir "$work/nowhere" info 2>&1 >/dev/null)"
code=$?
set -e
[ "$code" -eq 2 ] || fail "missing tree exit code $code"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "missing tree message is not one line: $err"
grep -q "nowhere" <<<"$err" || fail "missing tree message does not name it: $err"
echo "install test passed"
