"""Import a BVH with Blender's default importer and print where it stands, faces and goes.

    blender -b --python scripts/blender_check.py -- take.bvh [take.csv]

Prints, at the first frame, the head-top, feet and hips heights (Blender Z up, importer scale 1:
BVH centimetres become Blender units) and the subject's facing direction, (left hip - right hip)
x up. A distpose export of a person facing the camera should print feet at 0, the head above the
hips, facing (0, -1, 0) (towards the viewer of Blender's Front view) and left (1, 0, 0).

Over all frames (root motion): the hips' displacement from the first to the last frame (Blender
X = the camera's right, -Y = towards the camera), the pelvis' mean facing against that heading
(degrees), the spine's mean and largest tilt from vertical, the median height of the lower foot
(on the floor in a walk) and, with the CSV of the same take, the largest distance between the
imported joints and the CSV's (mm) and the median height of the feet on the CSV's contact frames.
"""

import builtins
import csv
import math
import statistics
import sys

import bpy  # Blender's own Python module: run this file with `blender -b --python`
from mathutils import Vector

# Debian's Blender 3.4 runs its BVH importer on Python 3.11, which dropped open()'s "U" mode.
_open = builtins.open
builtins.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)

args = sys.argv[sys.argv.index("--") + 1 :]
path = args[0]
csv_path = args[1] if len(args) > 1 else None
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=path)  # the importer's defaults: forward -Z, up Y, scale 1
armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
scene = bpy.context.scene
action = armature.animation_data.action
first, last = (int(v) for v in action.frame_range)
scene.frame_set(first)


def joint(name: str, end: str = "head") -> Vector:
    return armature.matrix_world @ getattr(armature.pose.bones[name], end)


left = (joint("LeftUpLeg") - joint("RightUpLeg")).normalized()
facing = left.cross(Vector((0, 0, 1))).normalized()
print(
    f"head top z={joint('Neck', 'tail').z:.1f}  feet z={joint('LeftFoot').z:.1f}, "
    f"{joint('RightFoot').z:.1f}  hips z={joint('Hips').z:.1f}  "
    f"facing={tuple(round(v, 3) for v in facing)}  left={tuple(round(v, 3) for v in left)}"
)

table = None
if csv_path:
    with _open(csv_path, newline="") as handle:
        table = list(csv.DictReader(handle))

hips, facings, tilts, lower, planted, worst = [], [], [], [], [], 0.0
names = [b.name for b in armature.pose.bones]
for frame in range(first, last + 1):
    scene.frame_set(frame)
    hips.append(joint("Hips"))
    side = joint("LeftUpLeg") - joint("RightUpLeg")
    facings.append(side.cross(Vector((0, 0, 1))))
    spine = joint("Spine1") - joint("Hips")
    tilts.append(math.degrees(spine.angle(Vector((0, 0, 1)))))
    feet = (joint("RightFoot").z, joint("LeftFoot").z)
    lower.append(min(feet))
    if table is not None and frame - first < len(table):
        row = table[frame - first]
        if row["tracked"] == "1" or row["interpolated"] == "1":
            for name in names:
                x, y, z = (float(row[f"{name}_{a}"]) for a in "xyz")
                csv_blender = Vector((x, -z, y)) * 100.0  # metres, Y up -> Blender units, Z up
                worst = max(worst, (joint(name) - csv_blender).length)
            for k, foot in enumerate(("RightFoot", "LeftFoot")):
                if row[f"{foot}_contact"] == "1":
                    planted.append(feet[k])

move = hips[-1] - hips[0]
heading = Vector((move.x, move.y, 0)).normalized()
mean_facing = Vector((sum(f.x for f in facings), sum(f.y for f in facings), 0)).normalized()
print(
    f"frames {first}-{last}: hips moved ({move.x:.1f}, {move.y:.1f}, {move.z:.1f}) "
    f"({Vector((move.x, move.y)).length / 100:.2f} m on the floor); facing vs heading "
    f"{math.degrees(mean_facing.angle(heading)):.0f} deg; spine tilt mean "
    f"{statistics.mean(tilts):.1f} deg, max {max(tilts):.1f} deg; lower foot median z "
    f"{statistics.median(lower):.1f}"
)
if table is not None:
    median_planted = statistics.median(planted) if planted else float("nan")
    print(
        f"BVH vs CSV: largest joint distance {10 * worst:.3f} mm; planted feet "
        f"({len(planted)} foot-frames) median z {median_planted:.2f}"
    )
