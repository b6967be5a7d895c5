"""Driving a head from a video of a face: read frames, track the face, solve controls, smooth."""
