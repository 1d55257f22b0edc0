#!/usr/bin/env python3
"""Chooses what stays in a checked-in corpus (`scripts/fuzz.sh merge`): the named seeds
(fuzz/seeds.py) and regression inputs always, then at most MAX of the fuzzer's inputs, picked
greedily for the code they reach beyond what is picked already, until none reaches more.

libFuzzer's own merge keeps an input for any new feature, hit counts included: thousands of
files for a YAML parser. Edges alone, capped, keep a corpus small enough to review and replay
in a second, at the price of the long tail, which `make fuzz` finds again.

usage: cmin.py CONTROL_FILE CORPUS_DIR [MAX]
CONTROL_FILE is what `TARGET -merge=1 -merge_control_file=CONTROL_FILE OUT DIRS...` wrote: the
input files, then per input a `COV <index> <pc indexes...>` line.
"""
import hashlib
import os
import re
import shutil
import sys

GENERATED = re.compile(r"^[0-9a-f]{40}$")


def read_control(path):
    lines = open(path).read().split("\n")
    count = int(lines[0])
    files = lines[2:2 + count]
    cov, size = {}, {}
    for line in lines[2 + count:]:
        parts = line.split()
        if parts and parts[0] == "STARTED":
            size[int(parts[1])] = int(parts[2])
        elif parts and parts[0] == "COV":
            cov[int(parts[1])] = set(map(int, parts[2:]))
    return files, cov, size


def main():
    control, corpus = sys.argv[1], os.path.normpath(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    files, cov, size = read_control(control)
    kept = {i for i, f in enumerate(files)
            if os.path.dirname(os.path.normpath(f)) == corpus
            and not GENERATED.match(os.path.basename(f))}
    covered = set().union(*(cov.get(i, set()) for i in kept))
    candidates = {i for i in range(len(files)) if i not in kept and i in cov}
    picked = []
    while candidates and len(picked) < limit:
        best = max(candidates, key=lambda i: (len(cov[i] - covered), -size.get(i, 0), files[i]))
        if not cov[best] - covered:
            break
        picked.append(best)
        covered |= cov[best]
        candidates.discard(best)

    contents = {}
    for i in picked:
        with open(files[i], "rb") as f:
            data = f.read()
        contents[hashlib.sha1(data).hexdigest()] = data
    for name in os.listdir(corpus):
        if GENERATED.match(name) and name not in contents:
            os.remove(os.path.join(corpus, name))
    for name, data in contents.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    print(f"{corpus}: {len(kept)} seeds, {len(contents)} found inputs, "
          f"{len(covered)} of {len(set().union(*cov.values()) if cov else set())} PCs")


if __name__ == "__main__":
    main()
