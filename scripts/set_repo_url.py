"""Point the repository URL at a fork: pyproject.toml's [project.urls] Repository and every notebook's Colab cell.

    python scripts/set_repo_url.py https://github.com/you/diatool-dpo

Run it with the current URL to rewrite the notebooks' install cells after diatool_utils/colab.py changed.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diatool_utils.colab import set_repo_url  # noqa: E402
from diatool_utils.paths import REPO_ROOT  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the repository to clone on Colab, e.g. https://github.com/you/diatool-dpo")
    args = parser.parse_args(argv)
    changed = set_repo_url(args.url)
    for path in changed:
        print(f"updated {path.relative_to(REPO_ROOT)}")
    if not changed:
        print(f"already {args.url}: nothing to change")


if __name__ == "__main__":
    main()
