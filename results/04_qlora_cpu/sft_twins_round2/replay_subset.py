"""Write the SFT conversations that hold at least one request of the given types (default: 3, the declines), for
`Recipe.dpo_replay_data`. Stop 21 replayed the 361 conversations with a decline beside row 7:

    python results/04_qlora_cpu/sft_twins_round2/replay_subset.py runs/exp18/sft_declines.jsonl
    python results/04_qlora_cpu/sft_twins_round2/run_dpo.py rows7_replay1_declines dpo_rows=7 dpo_replay_weight=1 \
        dpo_replay_data=runs/exp18/sft_declines.jsonl

Arguments: the output file, then the query types to keep (1 call, 2 ask, 3 decline).
"""
import json
import sys
from collections import Counter
from pathlib import Path

from diatool_utils.paths import DATA_DIR

out = Path(sys.argv[1])
types = {int(t) for t in sys.argv[2:]} or {3}
lines = (DATA_DIR / "sft.jsonl").read_text(encoding="utf-8").splitlines()
kept = [(line, row["query_types"]) for line in lines if types & set((row := json.loads(line))["query_types"])]
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("".join(line + "\n" for line, _ in kept), encoding="utf-8")  # the lines as they are, byte for byte
requests = Counter(t for _, query_types in kept for t in query_types)
print(f"{out}: {len(kept)} of {len(lines)} conversations; requests by type {dict(sorted(requests.items()))}")
