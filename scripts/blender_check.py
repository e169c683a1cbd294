"""Import a BVH with Blender's default importer and print where it stands and faces.

    blender -b --python scripts/blender_check.py -- take.bvh

Prints the head-top, feet and hips heights (Blender Z up, importer scale 1: BVH centimetres become
Blender units) and the subject's facing direction, (left hip - right hip) x up. A distpose export
of a person facing the camera should print feet at 0, the head above the hips, facing (0, -1, 0)
(towards the viewer of Blender's Front view) and left (1, 0, 0).
"""

import builtins
import sys

import bpy  # Blender's own Python module: run this file with `blender -b --python`
from mathutils import Vector

# Debian's Blender 3.4 runs its BVH importer on Python 3.11, which dropped open()'s "U" mode.
_open = builtins.open
builtins.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)

path = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=path)  # the importer's defaults: forward -Z, up Y, scale 1
armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
bpy.context.scene.frame_set(1)


def joint(name: str, end: str = "head") -> Vector:
    return armature.matrix_world @ getattr(armature.pose.bones[name], end)


left = (joint("LeftUpLeg") - joint("RightUpLeg")).normalized()
facing = left.cross(Vector((0, 0, 1))).normalized()
print(
    f"head top z={joint('Neck', 'tail').z:.1f}  feet z={joint('LeftFoot').z:.1f}, "
    f"{joint('RightFoot').z:.1f}  hips z={joint('Hips').z:.1f}  "
    f"facing={tuple(round(v, 3) for v in facing)}  left={tuple(round(v, 3) for v in left)}"
)
