"""Push a checkpoint folder (transformers, a bundled model: probe, scikit-learn or Keras CNN) to a Hub model repo.

    python scripts/push_to_hub.py FOLDER --repo-id OWNER/NAME [--private] [--revision REV] [--dry-run]
    python scripts/push_to_hub.py . --repo-id OWNER/SPACE --space [--dry-run]     # the app, as a Space

The token comes from HF_TOKEN or the stored login (`hf auth login`) and is never printed.
--dry-run lists every file that would be uploaded, and where, without touching the network.
Pickle-based files (e.g. the Trainer's training_args.bin) and checkpoint-*/ folders are never uploaded.
"""

from __future__ import annotations

import argparse
import sys

from musicgenre.errors import MusicGenreError
from musicgenre.families import plan_upload
from musicgenre.models.hub import plan_space_upload, push


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="checkpoint folder (or, with --space, the repository root)")
    parser.add_argument("--repo-id", required=True, help="OWNER/NAME of the Hub repository (created if missing)")
    parser.add_argument(
        "--private", action="store_true", help="create the repository as private (an existing one keeps its visibility)"
    )
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing; default: main)")
    parser.add_argument("--space", action="store_true", help="push the app (app.py, musicgenre/, ...) to a Gradio Space")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument("--dry-run", action="store_true", help="show what would be uploaded; no network")
    args = parser.parse_args(argv)
    try:
        if args.space:
            plan = plan_space_upload(args.folder, args.repo_id, private=args.private, revision=args.revision)
        else:
            plan = plan_upload(args.folder, args.repo_id, revision=args.revision, private=args.private)
        print(plan.describe())
        if args.dry_run:
            print(f"dry run: {len(plan.files) + (plan.card is not None)} files would be uploaded; nothing was sent")
            return 0
        print(f"pushed: {push(plan, commit_message=args.message)}")
    except MusicGenreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
