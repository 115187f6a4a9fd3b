"""Vision stages: detection, landmarks, alignment, tracking, classification, blinks."""
