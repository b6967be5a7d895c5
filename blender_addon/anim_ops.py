"""Animation operators: Bake Animation, Clear Bake, Import Take (Live Link Face CSV / AMASS .npz),
Build Export Rig, Re-attach, Reset Controls, Cancel.

Long requests run as polled jobs (anim_jobs.py): modal with a timer in the UI, a blocking loop in
background mode. Every operator checks its input before touching the scene, and a failed job
changes nothing: the scene is only edited once a complete answer is in hand.
"""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import (
    anim_import,
    anim_live,
    anim_sample,
    bake_cache,
    head_state,
    imp_head,
    imp_mesh,
    preferences,
    rig_build,
)
from .anim_jobs import BakeJob, RigJob
from .job import BackendJob, ReconstructJob
from .job_operator import CancelOperator, JobOperator, connection
from .shared.controls import ARKIT_NAMES, POSE_JOINTS
from .shared.errors import ErrorCode


def _active_head(context):
    obj = context.active_object
    return obj if head_state.is_head(obj) else None


def _job_state(context):
    return context.window_manager.headlift_anim_job


class HeadJobOperator(JobOperator):
    """A JobOperator on the active head: it reports into the animation job state, and the
    result goes to the head it was started on (``_finish(context, obj, job)``)."""

    STATE = "headlift_anim_job"
    NOT_STARTED = ""  # how a request that cannot be sent is reported (empty: "<label> not started")
    _obj_name: str = ""

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None and not _job_state(context).running

    def execute(self, context):
        obj = _active_head(context)
        if obj is None:
            return self._fail(context, "Select a Headlift head first")
        try:
            job = self._start(context, obj, preferences.get(context))
        except (OSError, ValueError) as exc:
            refused = self.NOT_STARTED or f"{self.bl_label} not started"
            return self._fail(context, f"{refused}: {exc}")
        self._obj_name = obj.name
        return self._run(context, job)

    def _start(self, context, obj, prefs) -> BackendJob:
        """The job for ``obj``; OSError or ValueError when it cannot be sent."""
        raise NotImplementedError

    def _error_text(self, context, code: str, message: str) -> str:
        obj = bpy.data.objects.get(self._obj_name)
        if code == ErrorCode.UNKNOWN_HEAD.value and obj is not None:
            anim_live.mark_unknown(obj)
            message = (f"the backend does not know '{obj.name}' (it was restarted since the head "
                       f"was made); press Re-attach to rebuild it from its portrait. ({message})")
        return super()._error_text(context, code, message)

    def _apply(self, context, job: BackendJob) -> str:
        obj = bpy.data.objects.get(self._obj_name)
        if obj is None:
            raise LookupError(f"'{self._obj_name}' was deleted while the backend worked")
        return self._finish(context, obj, job)

    def _finish(self, context, obj, job) -> str:
        raise NotImplementedError


class HEADLIFT_OT_bake(HeadJobOperator, bpy.types.Operator):
    """Send the control curves of the frame range to the backend and store the per-frame geometry
    in the .blend's way (Mesh Cache .pc2 or shape keys): playback and rendering then need no
    backend. Re-baking replaces the previous bake"""

    bl_idname = "headlift.bake_animation"
    bl_label = "Bake Animation"
    bl_options = {'REGISTER', 'UNDO'}

    use_scene_range: BoolProperty(name="Scene Frame Range", default=True)
    frame_start: IntProperty(name="Start", default=1)
    frame_end: IntProperty(name="End", default=250)

    NOT_STARTED = "Bake not started"

    def _start(self, context, obj, prefs) -> BakeJob:
        scene = context.scene
        start, end = ((scene.frame_start, scene.frame_end) if self.use_scene_range
                      else (self.frame_start, self.frame_end))
        expressions, pose = anim_sample.sample_controls(scene, obj, start, end)
        self._method = scene.headlift_anim.bake_method
        return BakeJob(prefs.backend_address, obj[imp_head.PROP_HEAD_ID], expressions, pose,
                       start, len(obj.data.vertices), bake_cache.new_cache_path(obj),
                       **connection(prefs))

    def _finish(self, context, obj, job: BakeJob) -> str:
        rec = bake_cache.attach(obj, job.cache_path, job.frame_start, job.frames, self._method)
        anim_live.forget(obj)
        where = Path(rec["path"]).name if rec["method"] == "PC2" else "shape keys"
        return (f"baked {job.frames} frames ({job.frame_start}-{job.frame_start + job.frames - 1}) "
                f"of '{obj.name}' into {where}")


class HEADLIFT_OT_clear_bake(bpy.types.Operator):
    """Remove the head's bake (modifier and cache file, or shape keys): the sliders drive the head
    live again"""

    bl_idname = "headlift.clear_bake"
    bl_label = "Clear Bake"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        obj = _active_head(context)
        return obj is not None and bake_cache.record(obj) is not None

    def execute(self, context):
        obj = _active_head(context)
        bake_cache.clear(obj)
        anim_live.control_changed(obj)
        self.report({'INFO'}, f"Headlift: cleared the bake of '{obj.name}'")
        return {'FINISHED'}


class HEADLIFT_OT_import_take(bpy.types.Operator, ImportHelper):
    """Key the head's sliders from a Live Link Face .csv (ARKit blendshapes, head rotation) or an
    SMPL / AMASS .npz (neck, collars, head, shoulders, root), resampled to the scene frame rate"""

    bl_idname = "headlift.import_take"
    bl_label = "Import Take"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default="*.csv;*.npz", options={'HIDDEN'})
    use_scene_start: BoolProperty(name="Start at Scene Start", default=True)
    frame_start: IntProperty(name="First Frame", default=1)

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None

    def execute(self, context):
        obj, scene = _active_head(context), context.scene
        state = _job_state(context)
        try:
            take = anim_import.read_take(self.filepath)
            report = anim_import.apply_take(
                scene, obj, take, None if self.use_scene_start else self.frame_start)
        except ValueError as exc:
            state.status, state.status_is_error = f"Import failed: {exc}", True
            self.report({'ERROR'}, f"Import failed, nothing keyed: {exc}")
            return {'CANCELLED'}
        text = f"{Path(self.filepath).name}: {report.summary()}"
        state.status, state.status_is_error = text, False
        self.report({'WARNING'} if report.unsupported or report.ignored else {'INFO'}, text)
        anim_live.control_changed(obj)
        return {'FINISHED'}


class HEADLIFT_OT_export_rig(HeadJobOperator, bpy.types.Operator):
    """Add a native rig of the head: a mesh with a shape key per expression and an armature with
    the SMPL joints and smooth vertex groups. It animates without the backend and exports to
    glTF / FBX"""

    bl_idname = "headlift.export_rig"
    bl_label = "Build Export Rig"
    bl_options = {'REGISTER', 'UNDO'}

    NOT_STARTED = "Rig request not sent"

    def _start(self, context, obj, prefs) -> RigJob:
        return RigJob(prefs.backend_address, obj[imp_head.PROP_HEAD_ID], **connection(prefs))

    def _finish(self, context, obj, job: RigJob) -> str:
        arm_obj, rigged = rig_build.build(context, obj, job.rig, job.rest_m)
        for other in context.selected_objects:
            other.select_set(False)
        arm_obj.select_set(True)
        rigged.select_set(True)
        context.view_layer.objects.active = arm_obj
        return (f"'{arm_obj.name}' ({len(job.rig.joint_names)} joints) and '{rigged.name}' "
                f"({len(job.rig.expression_names)} shape keys)")


class HEADLIFT_OT_reattach(HeadJobOperator, bpy.types.Operator):
    """Rebuild the head on the backend from its stored portrait and options (after a backend
    restart the backend no longer knows it). The object, its material and animation stay"""

    bl_idname = "headlift.reattach"
    bl_label = "Re-attach"
    bl_options = {'REGISTER', 'UNDO'}

    def _start(self, context, obj, prefs) -> ReconstructJob:
        source = _portrait_of(obj)
        if source is None:
            raise ValueError(f"the portrait '{obj.get(imp_head.PROP_SOURCE, '')}' this head was "
                             "made from is gone (also not beside the .blend); reconstruct the "
                             "head again")
        return ReconstructJob(prefs.backend_address, source.read_bytes(), obj.name,
                              source_path=str(source), options=head_state.options(obj),
                              **connection(prefs))

    def _finish(self, context, obj, job: ReconstructJob) -> str:
        head = job.head
        old_id = obj.get(imp_head.PROP_HEAD_ID, "")
        if len(head.verts_m) != len(obj.data.vertices):
            # The backend built another mesh (a different backend version): take it over, keep the
            # object, its materials and its animation; a bake of the old mesh no longer fits.
            mesh = imp_mesh.build_mesh(obj.data.name, head.verts_m, head.faces, head.loop_uvs)
            for material in obj.data.materials:
                mesh.materials.append(material)
            bake_cache.clear(obj)
            old = obj.data
            obj.data = mesh
            if old.users == 0:
                bpy.data.meshes.remove(old)
            note = "with a new mesh"
        else:
            note = "same mesh"
        obj[imp_head.PROP_HEAD_ID] = head.head_id
        head_state.store_head_info(obj, head.expression_names, head.joint_names, head.options)
        anim_live.forget(obj, old_id)
        anim_live.control_changed(obj)
        return f"re-attached '{obj.name}' to the backend ({note})"


def _portrait_of(obj) -> Path | None:
    """The stored portrait path, else a file of that name beside the .blend (a moved project)."""
    stored = obj.get(imp_head.PROP_SOURCE, "")
    if not stored:
        return None
    candidates = [Path(stored)]
    if bpy.data.filepath:
        candidates.append(Path(bpy.path.abspath("//")) / Path(stored).name)
    return next((c for c in candidates if c.is_file()), None)


class HEADLIFT_OT_reset_controls(bpy.types.Operator):
    """Set every expression slider to 0 and every joint to rest (keys are not touched)"""

    bl_idname = "headlift.reset_controls"
    bl_label = "Reset Controls"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None

    def execute(self, context):
        controls = _active_head(context).headlift_anim
        with anim_live.coalesced(_active_head(context)):
            for name in ARKIT_NAMES:
                setattr(controls, name, 0.0)
            for joint in POSE_JOINTS:
                setattr(controls, joint, (0.0, 0.0, 0.0))
        return {'FINISHED'}


class HEADLIFT_OT_anim_cancel(CancelOperator, bpy.types.Operator):
    """Stop the running bake, rig, re-attach or video job"""

    bl_idname = "headlift.anim_cancel"
    bl_label = "Cancel"
    STATE = HeadJobOperator.STATE


classes = (
    HEADLIFT_OT_bake,
    HEADLIFT_OT_clear_bake,
    HEADLIFT_OT_import_take,
    HEADLIFT_OT_export_rig,
    HEADLIFT_OT_reattach,
    HEADLIFT_OT_reset_controls,
    HEADLIFT_OT_anim_cancel,
)
