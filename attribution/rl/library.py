"""The episode library: a folder of episode files (default ``runs/``) that the Replay page lists.

Files are only ever added whole (atomic writes under a fresh, unique name, so two sessions saving
at once both keep theirs) and removed by name; a name that is not a plain file of the folder is refused.
"""

from __future__ import annotations

import dataclasses
import io
import re
import secrets
from pathlib import Path

from attribution.rl.episodes import Episode, EpisodeError, load_episode, read_summary, save_episode

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "runs"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str          # the file's name in the folder
    env_id: str
    policy: str
    seed: int
    length: int
    total_return: float
    created: str


class EpisodeLibrary:
    def __init__(self, folder=DEFAULT_FOLDER):
        self.folder = Path(folder)

    def entries(self) -> list[Entry]:
        """Every readable episode in the folder, newest first (unreadable files are left out)."""
        found = []
        for path in self.folder.glob("*.npz"):
            try:
                meta = read_summary(path)
            except EpisodeError:
                continue
            found.append(Entry(path.name, meta["env_id"], meta["policy"], int(meta["seed"]), int(meta["length"]),
                               float(meta["return"]), str(meta.get("created", ""))))
        return sorted(found, key=lambda e: (e.created, e.name), reverse=True)

    def save(self, episode: Episode) -> str:
        """Write ``episode`` under a new name; returns the name."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{episode.env_id}-seed{episode.seed}-{episode.created}")
        name = f"{stem}-{secrets.token_hex(3)}.npz"
        save_episode(episode, self.folder / name)
        return name

    def add_file(self, data: bytes, name: str = "the uploaded file") -> str:
        """An uploaded episode file, checked whole before anything is written (EpisodeError if damaged)."""
        return self.save(load_episode(io.BytesIO(data), name))

    def load(self, name: str) -> Episode:
        return load_episode(self._path(name))

    def delete(self, name: str) -> None:
        self._path(name).unlink()

    def _path(self, name: str) -> Path:
        path = self.folder / name
        if Path(name).name != name or path.suffix != ".npz" or not path.is_file():
            raise EpisodeError(f"no episode named {name!r} in the library {self.folder}.")
        return path
