"""Add-on preferences: where the backend listens and how to start a local one."""
from __future__ import annotations

import bpy
from bpy.props import FloatProperty, StringProperty

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


class HeadliftPreferences(bpy.types.AddonPreferences):
    # Extensions are installed as ``bl_ext.<repo>.headlift``; the package name is the only
    # spelling that works for every repository.
    bl_idname = __package__

    backend_address: StringProperty(
        name="Backend Address",
        description="ZeroMQ endpoint of the Headlift backend",
        default=DEFAULT_ADDRESS,
    )
    python_path: StringProperty(
        name="Python Interpreter",
        description="Python of the backend's environment (with torch). Empty: <project>/.venv's python",
        subtype='FILE_PATH',
        default="",
    )
    backend_dir: StringProperty(
        name="Backend Project",
        description="Folder of the Headlift project (holds the 'backend' package)",
        subtype='DIR_PATH',
        default="",
    )
    connect_timeout_s: FloatProperty(
        name="Connect Timeout",
        description="Seconds to wait for the backend's first answer before reporting it unreachable",
        default=3.0, min=0.5, max=60.0, unit='TIME_ABSOLUTE',
    )

    server_key_path: StringProperty(
        name="Server Public Key",
        description="Remote backends only: the server's public CURVE key file (server.key from "
                    "'python -m backend keys'). Empty: no encryption (loopback backends)",
        subtype='FILE_PATH',
        default="",
    )
    client_key_path: StringProperty(
        name="Client Key Pair",
        description="Remote backends only: this client's CURVE key pair (client.key_secret); its "
                    "public half must be in the server's --allow folder",
        subtype='FILE_PATH',
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "backend_address")
        layout.prop(self, "connect_timeout_s")
        col = layout.column(heading="Remote Backend (CURVE)")
        col.prop(self, "server_key_path")
        col.prop(self, "client_key_path")
        col = layout.column(heading="Start Local Backend")
        col.prop(self, "backend_dir")
        col.prop(self, "python_path")


def get(context=None) -> HeadliftPreferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


classes = (HeadliftPreferences,)
