"""facial-emotion: offline live facial emotion recognition, blinks and speech mood.

Importing the package is cheap: heavy libraries (dlib, TensorFlow, Vosk) load only
where a model is loaded.
"""

from __future__ import annotations

__version__ = "0.2.0"
