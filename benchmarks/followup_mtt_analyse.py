"""Part 1 of docs/experiments/followup-mtt-ipc1-raw-dit.md: the decisive experiment's arms, students and analysis
on one MTT set at IPC 1 (stage-1 set M), five seeds; secondary, Holm over its own four comparisons.

  python benchmarks/followup_mtt_analyse.py --restore runs/followup_mtt     # kept runs back into the evaluation
  python benchmarks/followup_mtt_analyse.py --sync runs/followup_mtt        # finished runs into KEEP
  python benchmarks/followup_mtt_analyse.py                                 # the tables (interim until 150 runs)
(KEEP: docs/results/followup_mtt_ipc1; the commands and their meaning are decisive_analyse.py's.)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import decisive_analyse as decisive  # noqa: E402
from paired_design import Design  # noqa: E402

MTT = Design(stages=("M",), seeds=5, set_name="mtt",
             family="The pre-declared comparisons (the follow-up's, secondary; Holm over the four)")

if __name__ == "__main__":
    decisive.main(MTT, "runs/followup_mtt", "docs/results/followup_mtt_ipc1", __doc__)
