"""Genres written into music files, safely: ``musicgenre tag`` and the beets plugin.

``names``: display names and the record a file keeps of our answer; ``formats``: reading and writing the genre
fields of each container through mutagen, and the audio payload that must never change; ``safety``: a file is
rewritten as a whole or not at all; ``journal``: what each file held before, for ``--undo``; ``run``: the
command itself; ``undo``: ``--undo``.

May import: ``models`` and everything below it."""
