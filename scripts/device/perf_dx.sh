#!/usr/bin/env bash
# Device call DX (one H100): attnres (block) slowed from 1.167-1.180x (calls AI, DF) to 1.243x in DW. The step of
# the code before this session's change (commit 0a4b95f, carried as .dev/old: `git archive 0a4b95f gptablate cli
# recipes | tar -x -C .dev/old`, cli renamed gptablate_cli, the recipes link replaced by the files) and of this
# checkout, one after the other on the same machine, each against its own baseline. The first time (DX) the old tree
# was not the one imported: `python3 -m` and `-c` put the working directory, the checkout, first on sys.path, before
# PYTHONPATH, so both rows ran this checkout. Call DZ ran it as it is now: the old tree's run from .dev/old.
TAG=${TAG:-dx}
source "$(dirname "$0")/common.sh" $TAG
ROOT=$PWD
(cd .dev/old && python3 -c "import gptablate.model.aggregate as a; print(a.__file__, hasattr(a, '_Carried'))")
for tree in old new; do
    if [ $tree = old ]; then cd .dev/old; run="python3 -m gptablate_cli"; else cd "$ROOT"; run=gptablate; fi
    timeout -k 5 280 $run bench gpt2_124m --steps 12 --all-variants --variant residual=attnres \
        --json $OUT/${TAG}_$tree.json > $OUT/${TAG}_$tree.txt 2>&1
    echo "$tree rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/${TAG}_$tree.txt | cut -c1-230
done
