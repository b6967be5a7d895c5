"""Headless Blender (the bpy module) set up like a fresh desktop install, with Headlift installed.

Shared by scripts/demo.py and the tests' driver. Call ``isolate_user_dirs`` before anything imports
bpy: Blender reads these variables once, when the module loads.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

ADDON_ID = "headlift"
REPO = "user_default"
ADDON_MODULE = f"bl_ext.{REPO}.{ADDON_ID}"

# Blender 5.0 honours all four (checked with bpy.utils.user_resource); RESOURCES alone covers
# datafiles and the rest, the others are set too so nothing reaches the real ~/.config/blender.
USER_DIR_VARS = {
    "BLENDER_USER_RESOURCES": "resources",
    "BLENDER_USER_CONFIG": "config",
    "BLENDER_USER_SCRIPTS": "scripts",
    "BLENDER_USER_EXTENSIONS": "extensions",
}


def isolate_user_dirs(root: Path) -> None:
    """Point Blender's user folders (prefs, add-ons, extensions) into ``root``."""
    if "bpy" in sys.modules:
        raise RuntimeError("isolate_user_dirs() must run before bpy is imported")
    for var, sub in USER_DIR_VARS.items():
        path = Path(root) / sub
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)


def install_addon(zip_path: Path):
    """Install the extension zip into the user repository, enable it, return its module."""
    import importlib

    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo=REPO, enable_on_install=True)
    if result != {'FINISHED'}:
        raise RuntimeError(f"installing {zip_path} failed: {result}")
    return importlib.import_module(ADDON_MODULE)


def addon_prefs():
    import bpy

    return bpy.context.preferences.addons[ADDON_MODULE].preferences


def configure(address: str | None = None, image: Path | None = None) -> None:
    import bpy

    if address is not None:
        addon_prefs().backend_address = address
    if image is not None:
        bpy.context.scene.headlift.image_path = str(image)


def reconstruct(undo: bool = True) -> set[str]:
    """Run the Reconstruct operator as a click would: with an undo step (``undo=True``).

    Raises RuntimeError with the operator's error report when it fails.
    """
    import bpy

    return bpy.ops.headlift.reconstruct('EXEC_DEFAULT', undo)


def scene_counts() -> dict[str, int]:
    """How many of each datablock kind exist: equal counts before/after mean an unchanged scene."""
    import bpy

    return {kind: len(getattr(bpy.data, kind))
            for kind in ("objects", "meshes", "materials", "images", "cameras", "lights", "actions")}


def use_workbench(scene, resolution: int = 512) -> None:
    """Workbench, texture colours, studio light: a second per view on a laptop CPU, and the
    flat, evenly lit look a face detector reads well."""
    _common_output(scene, resolution)
    scene.render.engine = 'BLENDER_WORKBENCH'
    shading = scene.display.shading
    shading.light = 'STUDIO'
    shading.color_type = 'TEXTURE'
    shading.show_specular_highlight = False
    shading.show_cavity = False
    scene.display.render_aa = '5'  # 8 samples cost 50% more time for no visible gain
    scene.view_settings.view_transform = 'Standard'


def _common_output(scene, resolution: int) -> None:
    scene.render.resolution_x = scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'
    if scene.world is None:
        import bpy

        scene.world = bpy.data.worlds.new("Headlift Backdrop")
    # Workbench shows the world colour as the background; Cycles also lights with it a little.
    scene.world.color = (0.18, 0.18, 0.2)
    if scene.world.node_tree is not None:
        background = scene.world.node_tree.nodes.get("Background")
        if background is not None:
            background.inputs["Color"].default_value = (0.18, 0.18, 0.2, 1.0)
            background.inputs["Strength"].default_value = 0.5


def use_cycles(scene, resolution: int = 512, samples: int = 16) -> None:
    """Cycles on the CPU at low samples, denoised: soft shadows from the turntable's area lights,
    a few seconds per view on a laptop."""
    _common_output(scene, resolution)
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.cycles.max_bounces = 4
    scene.view_settings.view_transform = 'AgX'


def render_turntable(obj, out_dir: Path, n_views: int = 24, views: list[int] | None = None
                     ) -> list[tuple[float, Path]]:
    """Build the add-on's turntable rig around ``obj`` and render views into
    out_dir/frame_###.png (### = view index). Returns (yaw in degrees, path) per rendered view."""
    import importlib

    import bpy

    turntable = importlib.import_module(f"{ADDON_MODULE}.turntable")
    scene = bpy.context.scene
    rig = turntable.build(bpy.context, obj, n_views)
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    for index in views if views is not None else range(n_views):
        yaw = rig.set_view(scene, index)
        path = out_dir / f"frame_{index:03d}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        rendered.append((yaw, path))
    return rendered


def view_index(yaw_deg: float, n_views: int) -> int:
    """The view of an n_views turntable that shows yaw_deg (which must be one of its yaws)."""
    index = yaw_deg * n_views / 360.0
    if not math.isclose(index, round(index)):
        raise ValueError(f"{n_views} views do not include yaw {yaw_deg}")
    return int(round(index)) % n_views
