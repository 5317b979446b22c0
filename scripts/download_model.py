"""Download a model from the Hugging Face Hub (pinned to a revision) into the cache or a folder.

    python scripts/download_model.py REPO_ID [--revision REV] [--local-dir DIR]

Offline (no network, or HF_HUB_OFFLINE=1) it uses a cached copy if there is one and says so.
Prints one JSON line: {"repo_id", "revision", "path", "source": "hub" | "cache", "kind"}.
"""

from __future__ import annotations

import argparse
import json
import sys

from musicgenre.errors import MusicGenreError
from musicgenre.families import checkpoint_kind
from musicgenre.models.hub import download_model, hub_reachable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", help="OWNER/NAME of a model repository")
    parser.add_argument("--revision", default=None, help="branch, tag or commit hash (pin one for reproducibility)")
    parser.add_argument("--local-dir", default=None, help="a folder to place the files in (default: the Hub cache)")
    args = parser.parse_args(argv)
    online = hub_reachable()
    try:
        path = download_model(args.repo_id, args.revision, args.local_dir, local_files_only=not online)
        kind = checkpoint_kind(path)
    except MusicGenreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not online:
        print("the Hub cannot be reached: using the cached copy", file=sys.stderr)
    out = {"repo_id": args.repo_id, "revision": args.revision, "path": str(path), "source": "hub" if online else "cache"}
    print(json.dumps({**out, "kind": kind}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
