"""Print how often the rule judge agrees with the hand-labelled replies, as a Markdown table.

    python scripts/judge_agreement.py [--labels tests/data/judge_agreement/replies.jsonl] [--show-disagreements]

Per output type and language: agreement, and precision and recall of the judge's "pass"; then,
for slot replies, agreement on whether the reply asks for every missing value.
"""
import argparse

from diatool_utils.judge_agreement import agreement_table, disagreements, judge_labelled, load_labelled
from diatool_utils.paths import REPO_ROOT


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=str(REPO_ROOT / "tests" / "data" / "judge_agreement" / "replies.jsonl"))
    parser.add_argument("--root", default=str(REPO_ROOT), help="the folder the labels' 'cases' paths start from")
    parser.add_argument("--show-disagreements", action="store_true", help="list every reply judged against its label")
    args = parser.parse_args(argv)
    judged = judge_labelled(load_labelled(args.labels), root=args.root)
    text = agreement_table(judged)
    if args.show_disagreements:
        text += "\n\n" + ("\n".join(disagreements(judged)) or "No disagreement.")
    print(text)
    return text


if __name__ == "__main__":
    main()
