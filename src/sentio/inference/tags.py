"""Valence, arousal and quadrant written into a music file's own tags, in a way that cannot damage it.

mutagen's `save()` rewrites a file in place: it moves the audio bytes to make room for the tags,
so a kill, a crash or a full disk in the middle leaves a file whose audio no longer decodes. Here
mutagen only ever writes into a copy in the same folder (a hidden `.NAME.sentio-tags-XXXXXXXX.tmp`),
which is flushed and fsynced, given the original's permission bits, and then renamed over the
original in one atomic step (the folder is fsynced after). At every moment the file's name points
either at the untouched original or at the complete tagged copy. A copy left by a killed run is
removed by the next run (`remove_stale_copies`); only names of that exact shape are touched.

What the rename changes: the tagged file is a new file (a new inode), so its modification time is
the time of tagging, it belongs to the user who ran predict.py unless that user may give it the
original's owner (root keeps the owner and group), and a hard link elsewhere to the original keeps
the untagged bytes. Extended attributes and ACLs are not copied; the permission bits are.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Iterable

from ..errors import first_line
from ..features.audio import AudioError
from .results import Result

TAG_NAMES = {"valence": "SENTIO_VALENCE", "arousal": "SENTIO_AROUSAL", "quadrant": "SENTIO_QUADRANT"}
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.sentio-tags-[0-9a-f]{8}\.tmp$")  # what temp_name makes


def tag_values(result: Result) -> dict[str, str]:
    """The tag texts of a result: valence and arousal on [-1, 1] (4 decimals) and the quadrant."""
    return {TAG_NAMES["valence"]: f"{result['valence']:.4f}", TAG_NAMES["arousal"]: f"{result['arousal']:.4f}",
            TAG_NAMES["quadrant"]: str(result["quadrant"])}


def temp_name(path: Path) -> Path:
    """The hidden copy of `path` that tags are written into, beside it."""
    return path.with_name(f".{path.name}.sentio-tags-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_copy(path: str | os.PathLike) -> bool:
    """Whether `path` is named the way `write_tags` names its copies."""
    return _TEMP_NAME.match(os.path.basename(path)) is not None


def remove_stale_copies(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete the tag copies a killed run left in `folders` (not below them) and return them. A
    copy is never the only version of a file: the original stays in place until the rename."""
    removed = []
    for folder in sorted({os.fspath(f) for f in folders}):
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # an unreadable folder is reported where its files are read
        for name in names:
            if _TEMP_NAME.match(name):
                path = Path(folder, name)
                try:
                    if path.is_file() and not path.is_symlink():
                        path.unlink()
                        removed.append(path)
                except OSError:
                    pass  # a folder we may not write: nothing of ours can be in it either
    return removed


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: int, sink: int) -> None:
    """All of `source` into `sink` inside the kernel (copy_file_range: no bytes through Python, and
    a shared-extent clone on file systems that offer one, e.g. XFS and Btrfs), else by reading."""
    try:
        while os.copy_file_range(source, sink, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(source, 0, os.SEEK_SET)
    os.lseek(sink, 0, os.SEEK_SET)
    os.ftruncate(sink, 0)
    with open(source, "rb", closefd=False) as reader, open(sink, "wb", closefd=False) as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)


def _refusal(path: Path) -> str | None:
    """Why `path` must not be tagged, checked before anything is written: a read-only file or
    folder is respected even by root (the permission bits say the user wants it left alone)."""
    folder = path.parent
    st, folder_st = path.stat(), folder.stat()
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if not os.access(path, os.W_OK) or not st.st_mode & stat.S_IWUSR:
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK) or not folder_st.st_mode & stat.S_IWUSR:
        return f"its folder {folder} is read-only (the tags go into a copy beside the file)"
    return None


def _set_tags(copy: Path, result: Result, original: str) -> None:
    """Write the tags into `copy` with mutagen (in place: it is our own copy)."""
    import mutagen
    from mutagen._vorbis import VCommentDict
    from mutagen.id3 import ID3, TXXX
    from mutagen.mp4 import MP4FreeForm, MP4Tags

    audio = mutagen.File(copy)
    if audio is None:
        raise AudioError(original, "cannot write tags: mutagen does not know this format")
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for name, value in tag_values(result).items():
        if isinstance(tags, ID3):
            tags.setall(f"TXXX:{name}", [TXXX(encoding=3, desc=name, text=[value])])
        elif isinstance(tags, MP4Tags):
            tags[f"----:com.apple.iTunes:{name}"] = [MP4FreeForm(value.encode())]
        elif isinstance(tags, VCommentDict):
            tags[name] = [value]
        else:
            raise AudioError(original, f"cannot write tags to {type(audio).__name__} files")
    audio.save()


def write_tags(path: str, result: Result) -> None:
    """Write valence, arousal and quadrant into the file's own tags without ever rewriting its
    bytes in place: ID3 TXXX frames (MP3, WAV, AIFF), Vorbis comments (OGG, Opus, FLAC), MP4
    freeform atoms (M4A). A symbolic link is followed and its target tagged. Raises AudioError (one
    line) for a file that cannot be tagged (read-only, unknown format, full disk); the file is then
    exactly as it was and no copy is left."""
    import mutagen

    target = Path(os.path.realpath(path))  # renaming over a link would replace the link, not the music
    copy: Path | None = None
    try:
        reason = _refusal(target)
        if reason:
            raise AudioError(path, f"cannot write tags: {reason}")
        mode = stat.S_IMODE(target.stat().st_mode)
        copy = temp_name(target)
        with open(target, "rb") as source, open(copy, "xb") as sink:  # "x": never over another file
            _copy(source.fileno(), sink.fileno())
        _set_tags(copy, result, path)
        _fsync(copy)
        original = target.stat()
        os.chmod(copy, mode)
        if (original.st_uid, original.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(copy, original.st_uid, original.st_gid)
            except OSError:  # only root may give a file away: it then belongs to the runner
                pass
        os.replace(copy, target)
        copy = None
        _fsync(target.parent)  # the rename itself survives a power cut
    except (mutagen.MutagenError, OSError) as exc:
        text = first_line(exc)
        if isinstance(exc, OSError) and exc.strerror:
            text = exc.strerror
        raise AudioError(path, f"cannot write tags ({text}); the file is left as it was") from None
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)
