#!/usr/bin/env bash
# Refreshes the committed seed corpora (fuzz/seeds/<target>) from what fuzz/run.sh found: the
# working corpus is minimized with `cargo fuzz cmin`, then the seeds become the hand-written ones
# (any file whose name is not a 40-digit hash) plus the largest minimized inputs, 50 files at
# most per target, so the repository stays small and each run starts with the coverage the last
# ones reached first. Review the diff before committing it.
#
#   fuzz/refresh-seeds.sh               # every target with a working corpus
#   fuzz/refresh-seeds.sh job_id        # one target
set -euo pipefail

cd "$(dirname "$0")"
max=50
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64:malloc_context_size=0:detect_odr_violation=0}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
  if [ ! -d "corpus/$target" ]; then
    echo "== $target: no working corpus (run fuzz/run.sh first)"
    continue
  fi
  mkdir -p "seeds/$target"
  cp -n "seeds/$target"/* "corpus/$target"/ 2>/dev/null || true
  nice -n 19 cargo +nightly fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1
  find "seeds/$target" -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -delete
  kept=$(find "seeds/$target" -type f | wc -l)
  # Largest first: within the minimized corpus a larger input reaches more of the decoder.
  mapfile -t picks < <(ls -S "corpus/$target" | head -n $((max > kept ? max - kept : 0)))
  for f in "${picks[@]}"; do
    cp "corpus/$target/$f" "seeds/$target/$f"
  done
  echo "== $target: $(find "seeds/$target" -type f | wc -l) seeds, $(du -cb "seeds/$target"/* | tail -n 1 | cut -f1) bytes"
done
