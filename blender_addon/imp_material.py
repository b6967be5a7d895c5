"""Texture image (packed into the .blend) and a Principled BSDF material that shows it."""
from __future__ import annotations

import bpy
import numpy as np

TEXTURE_NODE = "Headlift Texture"


def build_image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """Image datablock from texture: (H, W, 3|4) uint8, row 0 is the TOP of the picture.

    Blender's pixel buffer starts at the bottom row, so rows are flipped on the way in. The image
    is packed so the .blend carries it and nothing depends on a temp file.
    """
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] not in (3, 4) or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3|4) uint8, got {texture.shape} {texture.dtype}")
    height, width = texture.shape[:2]
    rgba = np.empty((height, width, 4), dtype=np.float32)
    rgba[..., :3] = texture[::-1, :, :3] * np.float32(1.0 / 255.0)
    rgba[..., 3] = 1.0 if texture.shape[2] == 3 else texture[::-1, :, 3] * np.float32(1.0 / 255.0)

    image = bpy.data.images.new(name, width=width, height=height, alpha=False)
    try:
        image.pixels.foreach_set(rgba.ravel())
        image.update()
        # Packing a generated image stores it as PNG inside the .blend.
        image.pack()
    except Exception:
        bpy.data.images.remove(image)
        raise
    return image


def build_material(name: str, image: bpy.types.Image) -> bpy.types.Material:
    """A Principled BSDF with the image on Base Color; skin-like, not glossy."""
    material = bpy.data.materials.new(name)
    try:
        material.use_nodes = True
        nodes, links = material.node_tree.nodes, material.node_tree.links
        bsdf = next(n for n in nodes if n.type == 'BSDF_PRINCIPLED')
        bsdf.inputs["Roughness"].default_value = 0.6
        tex = nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = TEXTURE_NODE
        tex.image = image
        tex.interpolation = 'Linear'
        tex.location = (bsdf.location.x - 400, bsdf.location.y)
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        # The Workbench and viewport "Texture" colour mode shows the active image node.
        nodes.active = tex
    except Exception:
        bpy.data.materials.remove(material)
        raise
    return material
