#!/usr/bin/env bash
# Wires a new fuzz target whose logic is in fuzz/src/targets/<name>.rs (`pub fn run(&[u8])`):
# registers it in fuzz/src/targets/mod.rs, writes its libFuzzer stub and [[bin]] entry, and
# creates its corpus directory (put at least one seed there: the replay test requires one).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: new_target.sh <name>}
[ -f "src/targets/$name.rs" ] || { echo "write src/targets/$name.rs first" >&2; exit 1; }
grep -q "^    $name,$" src/targets/mod.rs || sed -i "s/^    conversation,$/    $name,\n    conversation,/" src/targets/mod.rs
cat >"fuzz_targets/$name.rs" <<STUB
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| textsecure_fuzz::targets::$name::run(data));
STUB
grep -q "^name = \"$name\"$" Cargo.toml || printf '\n[[bin]]\nname = "%s"\npath = "fuzz_targets/%s.rs"\ntest = false\ndoc = false\nbench = false\n' "$name" "$name" >>Cargo.toml
mkdir -p "corpus/$name" "regressions/$name"
echo "wired $name; add seeds to fuzz/corpus/$name/"
