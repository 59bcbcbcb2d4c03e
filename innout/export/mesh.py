"""Geometry of a fitted frame: marching cubes on the composite density, exported as .ply or .glb.

The density of the two fields combined as the renderer combines them, (1 - b) sigma_face + b sigma_OOD
(softplus(raw - 1) each, EG3D's activation), is sampled on a grid over EG3D's box (side ``box_warp``,
centred at the origin, the grid EG3D's own shape export uses) and meshed at ``level``. EG3D's own shape export
uses 10, which suits its trained generator but not every fitted scene (a fit may never reach density 10
although it renders opaque), so by default the level is read off the density itself: ``surface_level``,
midway between the density where a frontal ray's accumulated opacity first reaches one half and the least
density in front of that point (median over the rays that become opaque), so that a solid of uniform density
is crossed at its boundary, and a fog's floor is not taken for a surface.
Each vertex is labelled by the field that contributes more density there: ``part`` 0 = face
(in-distribution), 1 = OOD object. The .glb holds the parts as two named meshes ("face", "ood"); the
.ply has a per-vertex ``part`` property. Colours are the fields' RGB features at the vertices.
Coordinates are EG3D's world (y up, the face looking towards +z, as glTF expects).

The grid has ``MIN_MESH_RESOLUTION`` to ``MAX_MESH_RESOLUTION`` points per axis, checked before anything is
allocated. It is sampled in chunks of points made on the fly into two float32 volumes (density and OOD
density), so 512, EG3D's own shape resolution and the most allowed, needs about 1.5 GB; colours are sampled
afterwards at the vertices only.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..safe_pickle import describe
from ..scene import Scene

MIN_MESH_RESOLUTION = 8  # a coarser grid has no surface worth the name
MAX_MESH_RESOLUTION = 512  # EG3D's shape export; 512^3 points in two float32 volumes are 1.07 GB


class MeshError(UserError, ValueError):
    """A mesh that cannot be made with the options given (a level the density never crosses, a grid size
    outside the bounds)."""


def check_resolution(resolution: object) -> int:
    """The grid size when it is a whole number within the bounds; ``MeshError`` otherwise."""
    whole = isinstance(resolution, int | np.integer) and not isinstance(resolution, bool)
    if not whole or not MIN_MESH_RESOLUTION <= resolution <= MAX_MESH_RESOLUTION:
        raise MeshError(
            f"the mesh resolution must be a whole number from {MIN_MESH_RESOLUTION} to {MAX_MESH_RESOLUTION} "
            f"(grid points per axis), got {describe(resolution)}"
        )
    return int(resolution)


@dataclass
class Mesh:
    vertices: np.ndarray  # [V, 3] float32
    faces: np.ndarray  # [T, 3] int64
    colours: np.ndarray  # [V, 3] uint8
    part: np.ndarray  # [V] uint8: 0 face, 1 OOD
    level: float = 10.0  # the density level the surface was taken at

    def part_faces(self, part: int) -> np.ndarray:
        """Triangles whose vertices are mostly of ``part``."""
        votes = self.part[self.faces].astype(np.int64).sum(1)
        return self.faces[(votes >= 2) == bool(part)]

    def counts(self) -> dict[str, int]:
        """Triangles and vertices of each part as the .glb holds them (a vertex shared by both parts is in both)."""
        out = {"triangles": len(self.faces)}
        for part, name in ((0, "face"), (1, "ood")):
            faces = self.part_faces(part)
            out[f"{name}_triangles"] = len(faces)
            out[f"{name}_vertices"] = len(np.unique(faces)) if len(faces) else 0
        return out


def components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """The connected piece each triangle belongs to (triangles sharing a vertex are connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_vertices, n_vertices))
    _, label = connected_components(graph, directed=False)
    return label[faces[:, 0]]


def without_stray_pieces(mesh: Mesh, half: float, grid: int, *, min_share: float = 0.01, rim: float = 1.5) -> Mesh:
    """The mesh without the pieces that are no part of a head or an object: specks (pieces with less than
    ``min_share`` of the triangles) and slabs (pieces lying within ``rim`` grid steps of one face of the box, of half
    side ``half`` sampled by ``grid`` points per axis, where the density meets the box's edge rather than a surface).
    Vertices used by no kept triangle go too."""
    if len(mesh.faces) == 0:
        return mesh
    piece = components(mesh.faces, len(mesh.vertices))
    sizes = np.bincount(piece)
    keep_piece = sizes >= max(1, min_share * len(mesh.faces))
    step = 2 * half / max(grid - 1, 1)
    for label in np.flatnonzero(keep_piece):
        points = mesh.vertices[np.unique(mesh.faces[piece == label])]
        lo, hi = points.min(0), points.max(0)
        for axis in range(3):
            thin = hi[axis] - lo[axis] <= rim * step
            at_edge = lo[axis] <= -half + rim * step or hi[axis] >= half - rim * step
            if thin and at_edge:
                keep_piece[label] = False
    faces = mesh.faces[keep_piece[piece]]
    used, local = np.unique(faces, return_inverse=True)
    return Mesh(mesh.vertices[used], local.reshape(-1, 3).astype(np.int64), mesh.colours[used], mesh.part[used],
                mesh.level)  # fmt: skip


@torch.no_grad()
def _sample(scene: Scene, planes: torch.Tensor, frame: int, points: torch.Tensor, codes, remove_ood: bool):
    face = scene.G.face_field(planes)(points[None])
    density = F.softplus(face.sigma[:, 0] - 1)
    rgb = face.rgb[:, :3]
    ood_share = torch.zeros_like(density)
    if scene.has_ood and not remove_ood:
        frames = torch.tensor([frame], device=points.device)
        ood = scene.data.ood.field(frames, codes)(points[None])
        b = ood.blend[:, 0]
        face_part, ood_part = (1 - b) * density, b * F.softplus(ood.sigma[:, 0] - 1)
        density = face_part + ood_part
        ood_share = ood_part / density.clamp_min(1e-8)
        rgb = (1 - ood_share[:, None]) * rgb + ood_share[:, None] * ood.rgb[:, :3]
    return density, rgb, ood_share


def extract_mesh(
    scene: Scene,
    frame: int = 0,
    edits: dict[str, float] | None = None,
    *,
    resolution: int = 128,
    level: float | None = None,
    remove_ood: bool = False,
    chunk: int = 1 << 18,
    clean: bool = True,
) -> Mesh:
    """Marching cubes of the composite density of ``frame`` (with ``edits``) on a ``resolution``^3 grid, at
    ``level`` (default: ``surface_level`` of that density); with ``clean``, without stray pieces (specks, and slabs
    where the density meets the box's edge: ``without_stray_pieces``)."""
    from skimage.measure import marching_cubes

    resolution = check_resolution(resolution)
    planes, _ = scene.planes(frame, edits)
    codes = scene.data.ood.codes[frame][None].detach() if scene.has_ood else None
    half = scene.G.rendering.box_warp / 2
    axis = torch.linspace(-half, half, resolution, device=scene.device)
    total = resolution**3
    density = torch.empty(total, device=scene.device)
    ood_density = torch.empty(total, device=scene.device)
    for start in range(0, total, chunk):
        index = torch.arange(start, min(start + chunk, total), device=scene.device)
        points = _grid_points(axis, index)
        d, _, share = _sample(scene, planes, frame, points, codes, remove_ood)
        density[start : start + len(index)], ood_density[start : start + len(index)] = d, share * d
    volume = density.reshape(resolution, resolution, resolution).cpu().numpy()  # [x, y, z]
    if level is None:
        level = surface_level(volume, spacing=2 * half / (resolution - 1))
    if not volume.min() < level < volume.max():
        raise MeshError(
            f"the density never crosses level {level} (it spans {volume.min():.3g} to {volume.max():.3g}); "
            "choose a level inside that range"
        )
    verts, faces, _, _ = marching_cubes(volume, level=level)
    # Each vertex lies on a grid edge between a point inside the surface and one outside. The fields can
    # change faster than the grid spacing (an opaque object's edge), so the label and colour come from
    # the inside end of that edge, not from the fields at the vertex itself (often just outside).
    lo = np.floor(verts).astype(np.int64).clip(0, resolution - 1)
    hi = np.ceil(verts).astype(np.int64).clip(0, resolution - 1)
    inside = np.where((volume[tuple(hi.T)] >= volume[tuple(lo.T)])[:, None], hi, lo)
    flat = torch.from_numpy((inside[:, 0] * resolution + inside[:, 1]) * resolution + inside[:, 2]).to(scene.device)
    colours = [
        _sample(scene, planes, frame, _grid_points(axis, index), codes, remove_ood)[1] for index in flat.split(chunk)
    ]
    share = ood_density[flat] / density[flat].clamp_min(1e-8)
    mesh = Mesh(
        vertices=(verts * (2 * half / (resolution - 1)) - half).astype(np.float32),
        faces=faces.astype(np.int64),
        colours=torch.cat(colours).clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy(),
        part=(share > 0.5).to(torch.uint8).cpu().numpy(),
        level=float(level),
    )
    return without_stray_pieces(mesh, half, resolution) if clean else mesh


def surface_level(volume: np.ndarray, spacing: float) -> float:
    """A level for the surface the renderer sees: along each frontal ray (a grid column in z, from the
    camera's side, +z), midway between the density at the first sample where the accumulated opacity
    1 - exp(-sum sigma * spacing) reaches 1/2 and the least density in front of it; the median over the rays
    that get there. ``MeshError`` when no ray gets there (a fog with no surface)."""
    from_camera = volume[:, :, ::-1]
    optical_depth = np.cumsum(from_camera * spacing, axis=2)
    opaque = optical_depth >= np.log(2.0)
    hits = opaque.any(axis=2)
    if not hits.any():
        raise MeshError(
            "the density field is nowhere opaque seen from the front (the most a ray gathers is an opacity of "
            f"{1 - np.exp(-optical_depth[:, :, -1].max()):.2f}): there is no surface to mesh"
        )
    first = opaque.argmax(axis=2)
    at_surface = np.take_along_axis(from_camera, first[:, :, None], axis=2)[:, :, 0]
    in_front = np.take_along_axis(np.minimum.accumulate(from_camera, axis=2), first[:, :, None], axis=2)[:, :, 0]
    return float(np.median((at_surface + in_front)[hits])) / 2


def _grid_points(axis: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The points [N, 3] of flat grid indices (x slowest, z fastest, as ``meshgrid(..., indexing='ij')``)."""
    r = len(axis)
    return torch.stack([axis[index // (r * r)], axis[(index // r) % r], axis[index % r]], dim=1)


def write_ply(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Binary little-endian PLY with per-vertex colour and ``part``."""
    path = Path(path)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar part\n"
        f"element face {len(mesh.faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vertex = np.zeros(
        len(mesh.vertices),
        dtype=[("p", "<f4", 3), ("c", "u1", 3), ("part", "u1")],
    )
    vertex["p"], vertex["c"], vertex["part"] = mesh.vertices, mesh.colours, mesh.part
    face = np.zeros(len(mesh.faces), dtype=[("n", "u1"), ("i", "<i4", 3)])
    face["n"], face["i"] = 3, mesh.faces
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(vertex.tobytes())
        f.write(face.tobytes())
    return path


def _pad4(data: bytes, fill: bytes = b"\x00") -> bytes:
    return data + fill * (-len(data) % 4)


def srgb_to_linear(colours: np.ndarray) -> np.ndarray:
    """8-bit sRGB (what the renders are) to linear float32 in [0, 1] (what glTF's vertex colours are)."""
    c = np.ascontiguousarray(colours, np.float32) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def write_glb(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Binary glTF 2.0: one node and mesh per part present ("face", "ood"), vertex colours."""
    path = Path(path)
    binary, views, accessors, meshes, nodes = b"", [], [], [], []

    def add(array: np.ndarray, target: int, component: int, kind: str, with_bounds: bool = False) -> int:
        nonlocal binary
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": array.nbytes, "target": target})
        binary = _pad4(binary + array.tobytes())
        accessor = {"bufferView": len(views) - 1, "componentType": component, "count": len(array), "type": kind}
        if with_bounds:
            accessor.update(min=array.min(0).tolist(), max=array.max(0).tolist())
        accessors.append(accessor)
        return len(accessors) - 1

    for part, name in ((0, "face"), (1, "ood")):
        faces = mesh.part_faces(part)
        if len(faces) == 0:
            continue
        used, local = np.unique(faces, return_inverse=True)
        position = add(np.ascontiguousarray(mesh.vertices[used], np.float32), 34962, 5126, "VEC3", True)
        colour = add(srgb_to_linear(mesh.colours[used]), 34962, 5126, "VEC3")  # glTF's COLOR_0 is linear
        indices = add(local.reshape(-1).astype(np.uint32), 34963, 5125, "SCALAR")
        primitive = {
            "attributes": {"POSITION": position, "COLOR_0": colour}, "indices": indices, "mode": 4, "material": 0,
        }
        meshes.append({"name": name, "primitives": [primitive]})
        nodes.append({"name": name, "mesh": len(meshes) - 1})
    document = {
        "asset": {"version": "2.0", "generator": "In-N-Out studio"},
        # without a material a viewer takes glTF's default, fully metallic: it mirrors its environment (the head
        # showed blue, green and violet); this one is matte and unlit, so the vertex colours are what is seen
        "materials": [{
            "name": "vertex colours",
            "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0, "roughnessFactor": 1.0},
            "extensions": {"KHR_materials_unlit": {}},
        }],  # fmt: skip
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": list(range(len(nodes)))}],
        "nodes": nodes,
        "meshes": meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    chunk_json = _pad4(json.dumps(document, separators=(",", ":")).encode(), b" ")
    total = 12 + 8 + len(chunk_json) + 8 + len(binary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<III", 0x46546C67, 2, total))
        f.write(struct.pack("<II", len(chunk_json), 0x4E4F534A) + chunk_json)
        f.write(struct.pack("<II", len(binary), 0x004E4942) + binary)
    return path


def write_mesh(mesh: Mesh, path: str | os.PathLike) -> Path:
    suffix = Path(path).suffix.lower()
    if suffix == ".ply":
        return write_ply(mesh, path)
    if suffix == ".glb":
        return write_glb(mesh, path)
    raise ValueError(f"mesh files must end in .ply or .glb, got {path}")
