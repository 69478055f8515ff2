"""The public path of episodes (``attribution.episodes.record_episode``): the data and its files live
in ``attribution/rl/episodes.py``, recording in ``attribution/rl/rollout.py``."""

from attribution.rl.episodes import Episode, EpisodeError, Frames, load_episode, save_episode
from attribution.rl.rollout import record_episode, replay_observations

__all__ = ["Episode", "EpisodeError", "Frames", "load_episode", "record_episode", "replay_observations", "save_episode"]
