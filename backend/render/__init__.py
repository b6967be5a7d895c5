"""The software renderer (tests and evaluation; Blender renders for real) and the camera models every part shares."""
