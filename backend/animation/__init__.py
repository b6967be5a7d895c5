"""Moving a head: posing requests (sliders, bakes) and driving from a video of a face."""
