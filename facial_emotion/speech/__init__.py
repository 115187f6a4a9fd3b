"""Speech: audio sources, recognisers (Vosk, PocketSphinx), sentiment, model downloads.

Importing this package is quick: vosk, pocketsphinx, sounddevice and vaderSentiment load
only when a recogniser, stream or scorer is opened.
"""

from __future__ import annotations
