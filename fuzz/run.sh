#!/usr/bin/env bash
# Runs every fuzz target of `jobs` for FUZZ_SECONDS each (default 600), one after another at
# the lowest CPU priority, and fails if any target finds a crash, a panic, a leak or an
# allocation over the limits below. Not part of CI: run it by hand after changing a decoder.
#
#   fuzz/run.sh                    # every target, 10 minutes each
#   FUZZ_SECONDS=60 fuzz/run.sh    # a quick pass
#   fuzz/run.sh job_id job_args    # some targets only
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Each target starts from its committed seeds (fuzz/seeds/<target>)
# and grows a working corpus in fuzz/corpus/<target> (not committed); a finding is written to
# fuzz/artifacts/<target>/ (replay it with `cargo +nightly fuzz run <target> <file>`).
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-600}"
# One allocation over 256 MiB, or the process over 512 MiB, counts as unbounded allocation.
# AddressSanitizer's own memory must stay below that: its quarantine of freed memory (256 MiB by
# default; 64 MiB still catches a use after free soon after it), and its record of the stack of
# every allocation, which keeps each distinct stack for ever and, for the targets that decode
# trees of replies, grows by a few hundred MiB in ten minutes (measured: 513 MiB after 1.7M runs,
# with 28 MiB of live heap; the same run without AddressSanitizer stays at 32 MiB). A finding is
# still reported with the stack where it happened; replay it with `cargo +nightly fuzz run
# <target> <file>` for the allocation stacks.
limits=(-rss_limit_mb=512 -malloc_limit_mb=256)
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64:malloc_context_size=0:detect_odr_violation=0}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Built once, up front: a build error stops here, and editing the code while the targets run
# does not change what they run.
nice -n 19 cargo +nightly fuzz build
bin="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
  echo "== $target: ${seconds}s"
  log="$(mktemp)"
  # The working corpus comes first: libFuzzer writes new inputs to the first directory.
  if nice -n 19 "$bin/$target" "corpus/$target" "seeds/$target" \
      -max_total_time="$seconds" "${limits[@]}" -artifact_prefix="artifacts/$target/" \
      -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
    grep -E '^Done [0-9]+ runs' "$log" || true
  else
    failed+=("$target")
    tail -n 60 "$log"
    echo "== $target FAILED (log: $log)"
    continue
  fi
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "every target ran ${seconds}s without a finding"
