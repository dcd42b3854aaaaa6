"""Writes timing probes of model/aggregate.py's pull kernel into a folder, for pull_ab.py: copies that leave one part
of a (token, site) step's work out, so that the difference in time is that part's cost (their outputs are wrong by
design). u_once: each site's u_j row not loaded (site k's, loaded once, in its place); no_s: the score's sum x·u_j
not taken (a constant in its place); both.

    python3 scripts/device/pull_probes.py FOLDER"""
import sys
from pathlib import Path

import gptablate.model.aggregate as AG

LOAD_K = "acc, bs, b = _pull_term(x, r, gk.to(tl.float32), tl.load(u_ptr + k * D + d, mask=dmask, other=0.0),"
U_ONCE = [(LOAD_K, "uk = tl.load(u_ptr + k * D + d, mask=dmask, other=0.0)\n"
                   "                acc, bs, b = _pull_term(x, r, gk.to(tl.float32), uk,"),
          ("uj = tl.load(u_ptr + j * D + d, mask=dmask, other=0.0)", "uj = uk")]
NO_S = [("        s = _sum(x * uj)\n", "        s = lse * 0.25\n")]


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(AG.__file__).read_text()
    for name, edits in (("u_once", U_ONCE), ("no_s", NO_S), ("both", U_ONCE + NO_S)):
        text = source
        for old, new in edits:
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        (folder / f"{name}.py").write_text(text)
        print(folder / f"{name}.py")


if __name__ == "__main__":
    main()
