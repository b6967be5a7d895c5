"""Turntable rig: a camera and three lights on a pivot that orbits the head, one view per frame.

This module only builds the rig and poses it; rendering is left to whoever calls it (a script, a
test, or the artist pressing F12), so it works with any render engine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Vector

RIG_NAME = "Headlift Turntable"


@dataclass
class Turntable:
    pivot: bpy.types.Object  # empty at the head's centre; its Z rotation is the view's yaw
    camera: bpy.types.Object
    lights: list[bpy.types.Object]
    yaws_deg: list[float]  # yaw of view i; frame frame_start + i shows it

    def set_view(self, scene: bpy.types.Scene, index: int) -> float:
        """Pose the rig for view ``index`` (via its keyframe); returns that view's yaw in degrees."""
        scene.frame_set(scene.frame_start + index)
        return self.yaws_deg[index]


def view_yaws(n_views: int) -> list[float]:
    """Evenly spaced yaws starting at 0 (the face): 24 views -> 0, 15, 30, ... 345 degrees."""
    return [360.0 * i / n_views for i in range(n_views)]


def build(
    context: bpy.types.Context,
    target: bpy.types.Object,
    n_views: int = 24,
    elevation_deg: float = 5.0,
    lens_mm: float = 85.0,
) -> Turntable:
    """Rig around ``target``: yaw 0 looks at the face (camera on -Y), positive yaw orbits
    counter-clockwise seen from above (towards the subject's left, +X).

    The camera is the scene camera and frames the target's bounding box; frames
    frame_start .. frame_start + n_views - 1 hold the views.
    """
    scene = context.scene
    centre, half_height, radius = _bounding_cylinder(target)
    created: list[bpy.types.ID] = []
    try:
        pivot = bpy.data.objects.new(RIG_NAME, None)
        created.append(pivot)
        pivot.empty_display_type = 'SPHERE'
        pivot.empty_display_size = 0.2 * max(half_height, radius)
        pivot.location = centre

        cam_data = bpy.data.cameras.new(f"{RIG_NAME} Camera")
        created.append(cam_data)
        cam_data.lens = lens_mm
        cam_data.sensor_fit = 'AUTO'
        camera = bpy.data.objects.new(f"{RIG_NAME} Camera", cam_data)
        created.append(camera)
        # The orbit sees the target's bounding cylinder (around Z) from every side: stand where
        # its height and width both fit, measured at its near side, with a small margin.
        half_fov = math.atan(cam_data.sensor_width / (2.0 * lens_mm))
        distance = 1.1 * max(half_height, radius) / math.tan(half_fov) + radius
        extent = max(half_height, radius)
        cam_data.clip_start = max(0.01, distance - 2.0 * extent)
        cam_data.clip_end = distance + 2.0 * extent
        elevation = math.radians(elevation_deg)
        offset = Vector((0.0, -distance * math.cos(elevation), distance * math.sin(elevation)))
        camera.parent = pivot
        camera.location = offset
        # Look at the pivot: the camera's -Z points along -offset, its +Y stays up.
        camera.rotation_euler = (-offset).to_track_quat('-Z', 'Y').to_euler()

        lights = []
        # Key from the camera's upper left, fill from the right, rim from behind: lit faces read
        # well for people and for face detectors alike.
        for label, energy, yaw, pitch, size in (
            ("Key", 15.0, -40.0, 35.0, 1.0),
            ("Fill", 5.0, 50.0, 10.0, 2.0),
            ("Rim", 10.0, 170.0, 40.0, 1.0),
        ):
            light_data = bpy.data.lights.new(f"{RIG_NAME} {label}", 'AREA')
            created.append(light_data)
            light_data.energy = energy * (distance ** 2)
            light_data.size = size * extent
            light = bpy.data.objects.new(f"{RIG_NAME} {label}", light_data)
            created.append(light)
            light.parent = pivot
            direction = _direction(yaw, pitch)
            light.location = direction * distance
            light.rotation_euler = (-direction).to_track_quat('-Z', 'Y').to_euler()
            lights.append(light)

        collection = context.collection or scene.collection
        for obj in (pivot, camera, *lights):
            collection.objects.link(obj)

        yaws = view_yaws(n_views)
        for i, yaw in enumerate(yaws):
            pivot.rotation_euler = (0.0, 0.0, math.radians(yaw))
            pivot.keyframe_insert("rotation_euler", index=2, frame=scene.frame_start + i)
        _make_linear(pivot)
        created.append(pivot.animation_data.action)
        scene.frame_end = scene.frame_start + n_views - 1
        scene.camera = camera
    except BaseException:
        bpy.data.batch_remove([c for c in created if c is not None])
        raise
    return Turntable(pivot=pivot, camera=camera, lights=lights, yaws_deg=yaws)


def _bounding_cylinder(obj: bpy.types.Object) -> tuple[Vector, float, float]:
    """Centre of the world-space bounding box, its half height, and its radius around Z."""
    corners = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    half = (hi - lo) / 2.0
    return Vector((lo + hi) / 2.0), float(half[2]), float(np.hypot(half[0], half[1]))


def _direction(yaw_deg: float, pitch_deg: float) -> Vector:
    """Unit vector from the pivot; yaw 0 / pitch 0 is towards the face (-Y)."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    return Vector((math.sin(yaw) * math.cos(pitch), -math.cos(yaw) * math.cos(pitch), math.sin(pitch)))


def _make_linear(obj: bpy.types.Object) -> None:
    # Playing the frames as an animation should orbit at constant speed, not ease in and out.
    for fcurve in _fcurves(obj.animation_data.action):
        for key in fcurve.keyframe_points:
            key.interpolation = 'LINEAR'


def _fcurves(action):
    # Blender 4.4+ keeps F-curves in layered actions (slots/channelbags); 4.2/4.3 on the action.
    if hasattr(action, "layers") and action.layers:
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    yield from bag.fcurves
    else:
        yield from action.fcurves
