#!/usr/bin/env bash
# Carry the sweep's unfinished work from one machine to the next, through git.
#   bash experiments/first_result/carry.sh save      # pack runs/first_result into carry.tar.gz and commit it
#   bash experiments/first_result/carry.sh restore   # unpack it where runs/first_result is missing (run.sh does)
# Why: runs/ is not in git, and a session may start on a new machine with none of it; a variant's generation
# takes longer than what is left of a session, and was lost that way once. What is carried is what the stages
# resume from: the generation and answer journals (`*.parts/`), manifests, summaries, status files and the links
# into _shared (a few MB). Not carried: trained models, training checkpoints and merged models (`*/model/`,
# `*/train/`, `*/eval/merged-*/`: a killed training restarts from step 0 on the next machine; a directory carried
# without its weights would look complete and fail to load) and any file over 8 MB. Pinned
# settings key the journals the same on every CPU (config.yaml), so a restored stage resumes where it stopped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
runs=runs/first_result
pack=experiments/first_result/carry.tar.gz

case "${1:-}" in
  save)
    [ -d "$runs" ] || { echo "carry: no $runs to save" >&2; exit 1; }
    find "$runs" \( -path '*/model' -o -path '*/model.stale-*' -o -path '*/train' -o -path '*/train.stale-*' \
                    -o -path '*/openvino' -o -path '*/merged-*' \) -prune \
         -o \( -type f -size -8M -o -type l \) -print0 \
      | tar --null --no-recursion --create --gzip --file "$pack.tmp" --files-from -
    mv "$pack.tmp" "$pack"
    echo "carry: $(tar --list --gzip --file "$pack" | wc -l) entries, $(du -h "$pack" | cut -f1) in $pack"
    git add -- "$pack"
    git commit --quiet -m "first_result: carry the unfinished work ($(date -u +%FT%TZ))" -- "$pack"
    ;;
  restore)
    if [ ! -f "$pack" ]; then exit 0; fi
    if [ -d "$runs" ]; then
      echo "carry: $runs exists; $pack left packed (remove $runs to restore it)" >&2; exit 0
    fi
    tar --extract --gzip --file "$pack"
    echo "carry: restored $runs from $pack ($(tar --list --gzip --file "$pack" | wc -l) entries)"
    ;;
  *) echo "usage: $0 save|restore" >&2; exit 2 ;;
esac
